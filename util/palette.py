"""Indexed (palette) PNG masks as DAVIS and YouTubeVOS store them: reading, writing, and the DAVIS palette."""
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image

from util.fileio import InputError, atomic_path


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
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != "P":
                raise InputError(f"{path}: not an indexed (palette) PNG but mode {image.mode!r}")
            return np.array(image, dtype=np.uint8), image.getpalette()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: cannot read the image ({error})") from None


def write_indexed_png(path: Union[str, Path], labels: np.ndarray, palette: list[int] = DAVIS_PALETTE) -> None:
    """Write uint8 HxW label indices as a palette PNG, atomically."""
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a 2-D uint8 array, got {labels.dtype} of shape {labels.shape}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels).tobytes())
    image.putpalette(palette)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
