"""scripts/resize_youtube.py and scripts/resize_static.py on generated data, run as from the repo root."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.synthetic_layouts import SyntheticSpec, write_layout
from util.imageio import DAVIS_PALETTE, read_indexed_png

ROOT = Path(__file__).resolve().parents[2]
SIZE = (64, 96)


def run(script: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"scripts/{script}", *map(str, arguments)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def youtube(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "YouTube"
    write_layout("youtube", root, SyntheticSpec(videos=2, frames=11, size=SIZE, max_objects=3, seed=0,
                                                progress=False))
    return root


@pytest.fixture(scope="module")
def static(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "static"
    write_layout("static", root, SyntheticSpec(videos=2, frames=1, size=SIZE, max_objects=1, seed=0,
                                               progress=False))
    return root


def names(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def test_resize_youtube_sets_the_shorter_side_and_keeps_masks_and_palette(youtube):
    source, out = youtube / "train", youtube / "train_480p"
    done = run("resize_youtube.py", "--in", source, "--out", out, "--size", 32, "--workers", 2)
    assert done.returncode == 0, done.stderr
    assert names(out) == names(source)
    assert json.loads((out / "meta.json").read_text()) == json.loads((source / "meta.json").read_text())
    for frame in (out / "JPEGImages").rglob("*.jpg"):
        with Image.open(frame) as image:
            assert image.mode == "RGB" and image.size == (48, 32)
    for mask in (out / "Annotations").rglob("*.png"):
        labels, palette = read_indexed_png(mask)
        original, _ = read_indexed_png(source / mask.relative_to(out))
        assert labels.shape == (32, 48) and palette == DAVIS_PALETTE
        assert set(np.unique(labels)) <= set(np.unique(original))
        np.testing.assert_array_equal(labels, original[1::2, 1::2])  # nearest at half size: pixel centres
    assert not [path for path in youtube.iterdir() if path.name.startswith(".")]


def test_resize_youtube_bad_input_exits_2_naming_the_folder(tmp_path):
    done = run("resize_youtube.py", "--in", tmp_path, "--out", tmp_path.parent / "out480")
    assert done.returncode == 2
    assert f"{tmp_path / 'JPEGImages'}: not found" in done.stderr
    done = run("resize_youtube.py", "--in", tmp_path, "--out", tmp_path / "inside")
    assert done.returncode == 2 and "must not be --in or inside it" in done.stderr


def test_resize_static_shrinks_the_longer_edge_and_keeps_masks_binary(static, tmp_path):
    out = tmp_path / "BIG_small"
    done = run("resize_static.py", "--in", static / "BIG_small", "--out", out, "--max_size", 48, "--workers", 2)
    assert done.returncode == 0, done.stderr
    assert names(out) == names(static / "BIG_small")
    for mask in out.glob("*.png"):
        with Image.open(mask) as image:
            assert image.mode == "L" and image.size == (48, 32)
            assert set(np.unique(np.asarray(image))) <= {0, 255}
        with Image.open(mask.with_suffix(".jpg")) as image:
            assert image.mode == "RGB" and image.size == (48, 32)


def test_resize_static_pairs_suffixes_and_mask_folders_and_copies_small_pairs(tmp_path):
    images, masks = tmp_path / "raw" / "images" / "part", tmp_path / "raw" / "masks" / "part"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(images / "cat_im.jpg")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(masks / "cat_gt.png")
    out = tmp_path / "small"
    done = run("resize_static.py", "--in", images.parent, "--masks", masks.parent, "--out", out,
               "--image_suffix", "_im.jpg", "--mask_suffix", "_gt.png", "--workers", 1)
    assert done.returncode == 0, done.stderr
    assert names(out) == ["part", "part/cat.jpg", "part/cat.png"]
    assert (out / "part" / "cat.png").read_bytes() == (masks / "cat_gt.png").read_bytes()


def test_resize_static_missing_mask_exits_2_naming_it(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "alone.jpg")
    done = run("resize_static.py", "--in", tmp_path, "--out", tmp_path.parent / "small_out")
    assert done.returncode == 2
    assert f"{tmp_path / 'alone.png'}: mask of {tmp_path / 'alone.jpg'} not found" in done.stderr
    assert not (tmp_path.parent / "small_out").exists()
