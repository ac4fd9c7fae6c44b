"""Static-image pretraining (stage 0, supplementary F.3.1): three synthetic frames augmented from one image.

`<static_root>` holds FSS-1000 as `fss/<class>/<n>.jpg` + `<n>.png` and the saliency sets DUTS-TR, DUTS-TE,
ECSSD, BIG_small and HRSOD_small as `<name>.jpg` + `<name>.png` (grey masks, object >= 128). BIG and HRSOD
have the best annotations and are listed five times. Randomness: torch's global generator only (see
`dataset.augment`).
"""
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from dataset.augment import (
    ColourJitter,
    Compose,
    PerFrame,
    RandomAffine,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomTPS,
    ResizeShorter,
    to_sample,
)
from dataset.sampling import FRAMES
from util.fileio import InputError
from util.imageio import is_hidden, open_image, read_image

# (folder under static_root, times each image is listed)
STATIC_SETS: tuple[tuple[str, int], ...] = (
    ("fss", 1), ("DUTS-TR", 1), ("DUTS-TE", 1), ("ecssd", 1), ("BIG_small", 5), ("HRSOD_small", 5),
)


def list_image_pairs(folder: Path) -> list[Path]:
    """The .jpg images under `folder` (any depth, name order), each checked to have its .png mask beside it."""
    if not folder.is_dir():
        raise InputError(f"{folder}: static image folder not found")
    images = sorted(path for path in folder.rglob("*") if path.suffix.lower() == ".jpg"
                    and not any(is_hidden(Path(part)) for part in path.relative_to(folder).parts))
    if not images:
        raise InputError(f"{folder}: no .jpg images in the folder")
    for image in images:
        if not image.with_suffix(".png").is_file():
            raise InputError(f"{image.with_suffix('.png')}: mask of {image.name} not found")
    return images


def read_binary_mask(path: Path) -> Image.Image:
    """A saliency mask as an 'L' image of 0/1 (grey values >= 128 are the object)."""
    with open_image(path) as image:
        grey = np.asarray(image.convert("L"))
    return Image.fromarray((grey >= 128).astype(np.uint8))


class ImageToClip:
    """Three synthetic frames from one image + mask (seed F.3.1): a shared augmentation of the base image
    (scale [0.8, 1.5], flip, colour jitter (0.1, 0.05, 0.05, 0.05), grayscale p=0.05), then per frame an
    affine (rotation +-20, scale [0.9, 1.1], shear +-10), shorter side to `crop_size`, a random crop,
    colour jitter (0.1, 0.05, 0.05) and a 12-point TPS warp with probability 1/3."""

    def __init__(self, crop_size: int = 384) -> None:
        self.base = Compose([
            RandomAffine(degrees=0, scale=(0.8, 1.5)),
            RandomHorizontalFlip(),
            ColourJitter(0.1, 0.05, 0.05, 0.05),
            RandomGrayscale(0.05),
        ])
        self.frame = PerFrame(Compose([
            RandomAffine(degrees=20, scale=(0.9, 1.1), shear=10),
            ResizeShorter(crop_size),
            RandomCrop(crop_size),
            ColourJitter(0.1, 0.05, 0.05),
            RandomTPS(p=1 / 3, points=12, scale=0.02),
        ]))

    def __call__(self, image: Image.Image, mask: Image.Image) -> tuple[list[Image.Image], list[Image.Image]]:
        images, masks = self.base([image], [mask])
        return self.frame(images * FRAMES, masks * FRAMES)


class StaticDataset(Dataset):
    """Samples of three frames made from one image + mask by a shared then a per-frame augmentation.

    Shared (the base image): random scale [0.8, 1.5], horizontal flip, colour jitter (0.1, 0.05, 0.05,
    hue 0.05), grayscale p=0.05. Per frame: random affine (rotation +-20, scale [0.9, 1.1], shear +-10),
    shorter side resized to `crop_size`, random `crop_size` crop, colour jitter (0.1, 0.05, 0.05), and a
    12-point TPS warp with probability 1/3. Single object: `sec_gt` is all zeros, `selector` [1, 0].
    """

    def __init__(self, root: Union[str, Path], crop_size: int = 384,
                 sets: Sequence[tuple[str, int]] = STATIC_SETS) -> None:
        self.root = Path(root)
        self.images: list[Path] = []
        for folder, repeats in sets:
            self.images += list_image_pairs(self.root / folder) * repeats
        self.augment = ImageToClip(crop_size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        path = self.images[index]
        image = Image.fromarray(read_image(path))
        mask = read_binary_mask(path.with_suffix(".png"))
        if image.size != mask.size:
            raise InputError(f"{path.with_suffix('.png')}: mask is {mask.size[0]}x{mask.size[1]}, "
                             f"image {image.size[0]}x{image.size[1]}")
        images, masks = self.augment(image, mask)
        name = path.relative_to(self.root).with_suffix("").as_posix()
        return to_sample(images, masks, targets=[1], name=name, frames=[path.name] * FRAMES)
