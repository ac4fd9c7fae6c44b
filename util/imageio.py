"""Reading frames, masks and set lists from disk, with errors that name the file."""
from pathlib import Path

import numpy as np
from PIL import Image

from util.fileio import InputError
from util.palette import read_indexed_png

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_image(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3); InputError naming the file if it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: cannot read the image ({error})") from None


def read_mask(path: Path, merge_labels: bool = False) -> np.ndarray:
    """A given mask as a label map: an indexed PNG (or 8-bit grey labels); void (255) becomes 0."""
    try:
        labels, _ = read_indexed_png(path)
    except InputError:
        with Image.open(path) as image:
            if image.mode != "L":
                raise
            labels = np.asarray(image)
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
