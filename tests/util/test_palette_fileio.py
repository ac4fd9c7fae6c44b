"""Atomic writes, InputError and palette PNG helpers."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from util.fileio import InputError, atomic_dir, atomic_path
from util.imageio import DAVIS_PALETTE, read_indexed_png, write_indexed_png


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_davis_palette_is_the_voc_colour_map():
    assert len(DAVIS_PALETTE) == 768 and all(0 <= v <= 255 for v in DAVIS_PALETTE)
    colours = np.array(DAVIS_PALETTE).reshape(256, 3)
    assert colours[:6].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128]]
    assert colours[8].tolist() == [64, 0, 0]
    assert colours[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in colours}) == 256


def test_indexed_png_round_trip(tmp_path):
    labels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "sub" / "00000.png"
    write_indexed_png(path, labels)
    with Image.open(path) as image:
        assert image.mode == "P" and image.format == "PNG"
    read, palette = read_indexed_png(path)
    assert read.dtype == np.uint8 and np.array_equal(read, labels)
    assert palette == DAVIS_PALETTE
    assert entries(path.parent) == ["00000.png"]


def test_write_indexed_png_custom_palette(tmp_path):
    palette = [7] * 768
    write_indexed_png(tmp_path / "a.png", np.zeros((3, 4), np.uint8), palette)
    labels, read_palette = read_indexed_png(tmp_path / "a.png")
    assert labels.shape == (3, 4) and read_palette == palette


@pytest.mark.parametrize("labels", [np.zeros((4, 4), np.int32), np.zeros((4, 4, 3), np.uint8)])
def test_write_indexed_png_rejects_wrong_arrays(tmp_path, labels):
    with pytest.raises(ValueError):
        write_indexed_png(tmp_path / "a.png", labels)
    assert entries(tmp_path) == []


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_read_indexed_png_rejects_other_modes(tmp_path, mode):
    path = tmp_path / "mask.png"
    Image.new(mode, (5, 4)).save(path)
    with pytest.raises(InputError, match="not an indexed") as error:
        read_indexed_png(path)
    assert str(path) in str(error.value)


def test_read_indexed_png_unreadable_or_missing(tmp_path):
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"not a png at all")
    for path in (garbage, tmp_path / "missing.png"):
        with pytest.raises(InputError) as error:
            read_indexed_png(path)
        assert str(error.value).startswith(str(path))


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "out" / "result.json"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent
        assert temporary.name.startswith(".") and temporary.suffix == ".json"
        assert not target.exists()
        temporary.write_text("done")
    assert target.read_text() == "done"
    assert entries(target.parent) == ["result.json"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert entries(tmp_path) == ["result.txt"]


def test_atomic_dir_creates_and_replaces(tmp_path):
    target = tmp_path / "dataset"
    with atomic_dir(target) as temporary:
        assert temporary.is_dir() and temporary.parent == tmp_path and temporary.name.startswith(".")
        (temporary / "a.txt").write_text("first")
    assert entries(target) == ["a.txt"]
    with atomic_dir(target) as temporary:
        (temporary / "b.txt").write_text("second")
        assert entries(target) == ["a.txt"]
    assert entries(target) == ["b.txt"]
    assert entries(tmp_path) == ["dataset"]


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as temporary:
            (temporary / "half.txt").write_text("x")
            raise KeyboardInterrupt
    assert entries(tmp_path) == []
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(ValueError):
        with atomic_dir(target):
            raise ValueError("bad")
    assert entries(tmp_path) == ["dataset"] and entries(target) == ["keep.txt"]


def test_input_error_is_an_exception_with_its_message():
    error = InputError("a/b.png: broken")
    assert isinstance(error, Exception) and str(error) == "a/b.png: broken"
