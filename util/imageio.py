"""Image files: frames, masks as DAVIS and YouTubeVOS store them (indexed PNGs, the DAVIS palette) and set
lists, read with errors that name the file and written atomically."""
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
from PIL import Image

from util.fileio import InputError, atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@contextmanager
def open_image(path: Union[str, Path]) -> Iterator[Image.Image]:
    """PIL's Image.open, loaded, with an InputError naming the file if it is missing or cannot be decoded
    (a cut-short or non-image file)."""
    try:
        with Image.open(path) as image:
            image.load()
            yield image
    except FileNotFoundError:
        raise InputError(f"{path}: no such image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: cannot read the image ({error})") from None


def _voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bits of the index spread over R, G, B from the high bit down)."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        for shift in range(7, -1, -1):
            red |= (index & 1) << shift
            green |= ((index >> 1) & 1) << shift
            blue |= ((index >> 2) & 1) << shift
            index >>= 3
        palette += [red, green, blue]
    return palette


# Flat [r0, g0, b0, r1, ...] list of 768 ints: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), ..., 255 (224, 224, 192).
DAVIS_PALETTE: list[int] = _voc_palette()


def read_indexed_png(path: Union[str, Path]) -> tuple[np.ndarray, Optional[list[int]]]:
    """Read a palette PNG as (uint8 HxW label indices, flat palette or None); InputError if not one."""
    with open_image(path) as image:
        if image.mode != "P":
            raise InputError(f"{path}: not an indexed (palette) PNG but mode {image.mode!r}")
        return np.array(image, dtype=np.uint8), image.getpalette()


def write_indexed_png(path: Union[str, Path], labels: np.ndarray, palette: list[int] = DAVIS_PALETTE) -> None:
    """Write uint8 HxW label indices as a palette PNG, atomically."""
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a 2-D uint8 array, got {labels.dtype} of shape {labels.shape}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels).tobytes())
    image.putpalette(palette)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def read_image(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3); InputError naming the file if it cannot be decoded."""
    with open_image(path) as image:
        return np.array(image.convert("RGB"))


def read_mask(path: Path, merge_labels: bool = False) -> np.ndarray:
    """A given mask as a label map: an indexed PNG (or 8-bit grey labels); void (255) becomes 0."""
    with open_image(path) as image:
        if image.mode not in ("P", "L"):
            raise InputError(f"{path}: not an indexed (palette) PNG but mode {image.mode!r}")
        labels = np.array(image, dtype=np.uint8)
    labels = np.where(labels == 255, 0, labels).astype(np.uint8)
    return (labels > 0).astype(np.uint8) if merge_labels else labels


def list_images(folder: Path) -> list[Path]:
    """The frame files of a folder in name order; InputError if the folder is missing or empty."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such frame folder")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not frames:
        raise InputError(f"{folder}: empty sequence (no .jpg/.png frames)")
    return frames


def read_list(path: Path) -> list[str]:
    """Sequence names from an ImageSets-style list file."""
    if not path.is_file():
        raise InputError(f"{path}: sequence list not found (is the dataset root right?)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
