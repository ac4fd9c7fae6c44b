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
    """uint8 RGB (H, W, 3) whatever the file's mode: grey, palette, alpha and 16-bit frames are converted (so
    a video whose frames differ in these reads as one); InputError naming the file if it cannot be."""
    with open_image(path) as image:
        if image.mode.startswith("I;16"):  # 16-bit grey: keep the high byte (PIL's RGB conversion clips)
            grey = (np.array(image, dtype=np.uint16) >> 8).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        if image.mode in ("I", "F"):
            raise InputError(f"{path}: a {'32-bit integer' if image.mode == 'I' else 'floating-point'} image; "
                             f"frames must be 8 or 16 bits per channel")
        return np.array(image.convert("RGB"))


VOID_LABEL = 255  # DAVIS 2017's "ignore" label in indexed masks


def read_label_map(path: Union[str, Path]) -> tuple[np.ndarray, str]:
    """The labels of a mask PNG and how to read them: 'P' for label indices (an indexed PNG, as DAVIS 2017
    and YouTubeVOS store masks, or an RGB one in the DAVIS palette's colours), 'L' for an 8-bit grey mask
    (labels, or DAVIS 2016's 0/255; 1-bit and 16-bit masks too). Anything else is an InputError."""
    with open_image(path) as image:
        if image.mode in ("P", "L"):
            return np.array(image, dtype=np.uint8), image.mode
        if image.mode in ("1", "LA"):
            return np.array(image.convert("L"), dtype=np.uint8), "L"
        if image.mode.startswith("I"):
            values = np.array(image)
            if values.min() < 0 or values.max() > 255:
                raise InputError(f"{path}: a {image.mode} mask with values up to {values.max()}; labels must be 0-255")
            return values.astype(np.uint8), "L"
        if image.mode in ("RGB", "RGBA"):
            return _palette_labels(np.array(image.convert("RGB")), path), "P"
        raise InputError(f"{path}: not an indexed (palette) PNG nor an 8-bit grey mask but mode {image.mode!r}")


def _palette_labels(rgb: np.ndarray, path: Union[str, Path]) -> np.ndarray:
    """Label indices of an RGB mask drawn in DAVIS palette colours (as a viewer saves an indexed mask)."""
    index_of = {tuple(DAVIS_PALETTE[3 * i:3 * i + 3]): i for i in range(255, -1, -1)}  # lowest index wins
    colours, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    colours = [tuple(int(v) for v in colour) for colour in colours]
    unknown = [colour for colour in colours if colour not in index_of]
    if unknown:
        raise InputError(f"{path}: not an indexed (palette) PNG but an RGB mask with {len(unknown)} colours outside "
                         f"the DAVIS palette (e.g. {unknown[0]}); save it as an indexed or grey label PNG")
    lookup = np.array([index_of[colour] for colour in colours], dtype=np.uint8)
    return lookup[inverse.reshape(-1)].reshape(rgb.shape[:2])


def merge_objects(labels: np.ndarray, mode: str, keep_void: bool = False) -> np.ndarray:
    """DAVIS 2016's single object as 1: in a grey mask the values from 128 up (the release's 0/255), in an
    indexed one every label but 0 and void; void becomes 255 if `keep_void`, else background."""
    if mode == "L":
        return (labels >= 128).astype(np.uint8)
    merged = ((labels > 0) & (labels != VOID_LABEL)).astype(np.uint8)
    if keep_void:
        merged[labels == VOID_LABEL] = VOID_LABEL
    return merged


def read_mask(path: Path, merge_labels: bool = False) -> np.ndarray:
    """A given mask as a label map (void becomes background), or its objects merged into one (DAVIS 2016)."""
    labels, mode = read_label_map(path)
    if merge_labels:
        return merge_objects(labels, mode)
    return np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)


def read_davis_sequences(davis_path: Path, subset: str, year: int) -> list[str]:
    """Sequence names of a DAVIS set list: `ImageSets/<year>/<subset>.txt` (one name per line, DAVIS 2017,
    and the 2016 lists inside it) or, in DAVIS 2016 as released, `ImageSets/480p/<subset>.txt` (an image
    and a mask path per line: the sequence is the folder of each)."""
    davis_path = Path(davis_path)
    if not davis_path.is_dir():
        raise InputError(f"{davis_path}: no such DAVIS folder")
    list_path = davis_path / "ImageSets" / str(year) / f"{subset}.txt"
    released_2016 = davis_path / "ImageSets" / "480p" / f"{subset}.txt"
    if year == 2016 and not list_path.is_file() and released_2016.is_file():
        list_path, names = released_2016, []
        for number, line in enumerate(released_2016.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            parts = Path(line.split()[0].lstrip("/")).parts
            if len(parts) != 4 or parts[:2] != ("JPEGImages", "480p"):
                raise InputError(f"{released_2016}:{number}: expected '/JPEGImages/480p/<sequence>/<frame>.jpg "
                                 f"/Annotations/480p/<sequence>/<frame>.png', got {line.strip()!r}")
            if parts[2] not in names:
                names.append(parts[2])
    elif not list_path.is_file():
        raise InputError(f"{list_path}: no such set list (is the path a DAVIS {year} folder?)")
    else:
        names = read_list(list_path)
    if not names:
        raise InputError(f"{list_path}: the set list is empty")
    return names


def is_hidden(path: Path) -> bool:
    """What operating systems and tools leave beside data (`.DS_Store`, `._00000.jpg` AppleDouble files,
    `.ipynb_checkpoints`, `__MACOSX`): never a frame, mask or video of a dataset."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def entries(folder: Path, pattern: str = "*") -> list[Path]:
    """The visible entries of `folder` matching `pattern` (hidden ones skipped), in name order."""
    return sorted(path for path in folder.glob(pattern) if not is_hidden(path))


def list_images(folder: Path) -> list[Path]:
    """The frame files of a folder in name order; InputError if the folder is missing or empty."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such frame folder")
    frames = [p for p in entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not frames:
        raise InputError(f"{folder}: empty sequence (no .jpg/.png frames)")
    return frames


def read_list(path: Path) -> list[str]:
    """Sequence names from an ImageSets-style list file."""
    if not path.is_file():
        raise InputError(f"{path}: sequence list not found (is the dataset root right?)")
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
