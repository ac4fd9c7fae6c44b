"""Files as users really have them: junk beside the frames, masks saved in other modes, lists from Windows."""
import numpy as np
import pytest
from PIL import Image

from util.fileio import InputError
from util.imageio import (DAVIS_PALETTE, list_images, read_davis_sequences, read_image, read_list, read_mask,
                          write_indexed_png)

LABELS = np.array([[0, 1, 1, 2], [0, 0, 2, 2], [3, 3, 0, 0]], dtype=np.uint8)


def test_junk_beside_frames_is_not_a_frame(tmp_path):
    for name in ("00000.jpg", "00001.jpg"):
        Image.new("RGB", (4, 3)).save(tmp_path / name)
    (tmp_path / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # macOS resource fork
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "Thumbs.db").write_bytes(b"junk")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "notes.txt").write_text("shot on a phone")
    assert [p.name for p in list_images(tmp_path)] == ["00000.jpg", "00001.jpg"]


def test_frames_in_other_modes_and_depths_read_as_8_bit_rgb(tmp_path):
    """Frames of one video saved differently (an export that changed mid-way) read as the first frame's kind."""
    grey = np.array([[0, 64, 128], [192, 255, 7]], dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")  # 16-bit grey, same picture
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    for name in ("rgb.png", "grey.png", "sixteen.png", "alpha.png", "palette.png"):
        frame = read_image(tmp_path / name)
        assert frame.dtype == np.uint8 and frame.shape == (2, 3, 3), name
        assert np.array_equal(frame, rgb), name
    Image.fromarray(grey.astype(np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(InputError, match=r"float.tif: a floating-point image"):
        read_image(tmp_path / "float.tif")


def test_masks_in_other_modes_give_the_same_labels(tmp_path):
    write_indexed_png(tmp_path / "indexed.png", LABELS)
    with Image.open(tmp_path / "indexed.png") as image:
        image.convert("RGB").save(tmp_path / "rgb.png")  # what an editor saves after opening the indexed PNG
        image.convert("RGB").convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(LABELS, mode="L").save(tmp_path / "grey.png")
    Image.fromarray(LABELS.astype(np.uint16) * 1).save(tmp_path / "sixteen.png")
    for name in ("indexed.png", "rgb.png", "rgba.png", "grey.png", "sixteen.png"):
        assert np.array_equal(read_mask(tmp_path / name), LABELS), name
    Image.fromarray(LABELS > 0).save(tmp_path / "binary.png")  # a 1-bit mask: one object
    assert np.array_equal(read_mask(tmp_path / "binary.png", merge_labels=True), (LABELS > 0).astype(np.uint8))


def test_masks_that_cannot_be_labels_are_named(tmp_path):
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[0, 0] = (10, 200, 30)  # not a DAVIS palette colour
    Image.fromarray(rgb).save(tmp_path / "drawn.png")
    with pytest.raises(InputError, match=r"drawn.png: not an indexed \(palette\) PNG but an RGB mask with 1 colours"):
        read_mask(tmp_path / "drawn.png")
    Image.fromarray(np.full((3, 4), 1000, np.uint16)).save(tmp_path / "depth.png")
    with pytest.raises(InputError, match="depth.png: a I;16 mask with values up to 1000"):
        read_mask(tmp_path / "depth.png")
    assert tuple(DAVIS_PALETTE[3:6]) == (128, 0, 0)


def test_lists_saved_on_windows_are_read(tmp_path):
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    path = tmp_path / "ImageSets" / "2017" / "val.txt"
    path.write_bytes("\ufeffbear\r\nblackswan \r\n\r\n".encode("utf-8"))  # BOM, CRLF, trailing space, blank line
    assert read_list(path) == ["bear", "blackswan"]
    assert read_davis_sequences(tmp_path, "val", 2017) == ["bear", "blackswan"]
