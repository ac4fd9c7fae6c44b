"""Training augmentations whose one random draw is applied identically to several images and masks.

Every transform is called as `transform(images, masks) -> (images, masks)` on lists of PIL images (RGB
frames and 'L' label maps, 0 = background) and draws its random parameters once per call, so one call
moves all the frames of a sample together; `PerFrame` instead draws once per (image, mask) frame. Masks
are always resampled nearest-neighbour so that labels stay exact, and pixels uncovered by a geometric
transform become the ImageNet mean colour in images (zero after normalisation) and background in masks.

Randomness: only torch's global generator is used (torchvision's `get_params`, `torch.rand`,
`torch.randperm`, `torch.randn`), never numpy or `random`. DataLoader workers therefore need no
`worker_init_fn`: each worker's torch generator is seeded with the loader's base seed + worker id, the
base seed being drawn from the caller's generator (or its `generator=` argument) once per epoch.
"""
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from dataset.tps import remap, tps_maps
from util.preprocess import IMAGENET_MEAN, normalise

Frames = tuple[list[Image.Image], list[Image.Image]]  # (RGB images, 'L' label masks)
Transform = Callable[[list[Image.Image], list[Image.Image]], Frames]

MEAN_FILL = [round(255 * channel) for channel in IMAGENET_MEAN]  # (124, 116, 104)


def _same_size(images: list[Image.Image], masks: list[Image.Image]) -> tuple[int, int]:
    """(width, height) shared by all images and masks; ValueError if they differ."""
    sizes = {item.size for item in images + masks}
    if len(sizes) != 1:
        raise ValueError(f"one random draw needs images and masks of one size, got {sorted(sizes)}")
    return sizes.pop()


def _coin(p: float) -> bool:
    """True with probability `p`."""
    return bool(torch.rand(1).item() < p)


class Compose:
    """Apply transforms in order, each with one draw for all the frames."""

    def __init__(self, steps: Sequence[Transform]) -> None:
        self.steps = list(steps)

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        for step in self.steps:
            images, masks = step(images, masks)
        return images, masks


class PerFrame:
    """Apply a transform to each (image, mask) frame separately, with an independent draw per frame."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        if len(images) != len(masks):
            raise ValueError(f"PerFrame needs one mask per image, got {len(images)} images and {len(masks)} masks")
        frames = [self.transform([image], [mask]) for image, mask in zip(images, masks)]
        return [image for (image,), _ in frames], [mask for _, (mask,) in frames]


class RandomHorizontalFlip:
    """Mirror all frames left-right with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        if not _coin(self.p):
            return images, masks
        return [F.hflip(image) for image in images], [F.hflip(mask) for mask in masks]


class RandomAffine:
    """torchvision's random affine (rotation in +-degrees, scale range, x-shear in +-shear) about the centre."""

    def __init__(self, degrees: float, scale: Optional[tuple[float, float]] = None, shear: float = 0.0) -> None:
        self.degrees = [-degrees, degrees]
        self.scale = list(scale) if scale is not None else None
        self.shear = [-shear, shear] if shear else None

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        width, height = _same_size(images, masks)
        angle, translate, scale, shear = transforms.RandomAffine.get_params(
            self.degrees, None, self.scale, self.shear, [width, height])
        images = [F.affine(image, angle, list(translate), scale, list(shear), InterpolationMode.BICUBIC, MEAN_FILL)
                  for image in images]
        masks = [F.affine(mask, angle, list(translate), scale, list(shear), InterpolationMode.NEAREST, [0])
                 for mask in masks]
        return images, masks


class ResizeShorter:
    """Resize so that the shorter side is `size` (bicubic images, nearest masks); no randomness."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        return ([F.resize(image, self.size, InterpolationMode.BICUBIC) for image in images],
                [F.resize(mask, self.size, InterpolationMode.NEAREST) for mask in masks])


class RandomCrop:
    """A random `size` x `size` window, the same for all frames (which must be at least that large)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        width, height = _same_size(images, masks)
        if min(width, height) < self.size:
            raise ValueError(f"cannot crop {self.size}x{self.size} out of a {width}x{height} image")
        top, left, crop_h, crop_w = transforms.RandomCrop.get_params(images[0], (self.size, self.size))
        return ([F.crop(image, top, left, crop_h, crop_w) for image in images],
                [F.crop(mask, top, left, crop_h, crop_w) for mask in masks])


class RandomResizedCrop:
    """torchvision's random resized crop to `size` x `size` (area `scale`, aspect `ratio`), one window for all."""

    def __init__(self, size: int, scale: tuple[float, float], ratio: tuple[float, float]) -> None:
        self.size = [size, size]
        self.scale = list(scale)
        self.ratio = list(ratio)

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        _same_size(images, masks)
        top, left, crop_h, crop_w = transforms.RandomResizedCrop.get_params(images[0], self.scale, self.ratio)
        return ([F.resized_crop(image, top, left, crop_h, crop_w, self.size, InterpolationMode.BICUBIC)
                 for image in images],
                [F.resized_crop(mask, top, left, crop_h, crop_w, self.size, InterpolationMode.NEAREST)
                 for mask in masks])


def _around_one(strength: float) -> Optional[list[float]]:
    """The factor range [max(0, 1 - s), 1 + s] torchvision's ColorJitter draws from; None for no change."""
    if strength < 0:
        raise ValueError(f"jitter strength must not be negative, got {strength}")
    return [max(0.0, 1 - strength), 1 + strength] if strength else None


class ColourJitter:
    """torchvision's colour jitter (random factors, random order), the same factors for all images."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 hue: float = 0.0) -> None:
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue jitter must be in [0, 0.5], got {hue}")
        self.ranges = (_around_one(brightness), _around_one(contrast), _around_one(saturation),
                       [-hue, hue] if hue else None)

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        order, *factors = transforms.ColorJitter.get_params(*self.ranges)
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        for index in order.tolist():
            if factors[index] is not None:
                images = [adjust[index](image, factors[index]) for image in images]
        return images, masks


class RandomGrayscale:
    """Turn all images grey (kept as 3 channels) with probability `p`."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        if not _coin(self.p):
            return images, masks
        return [F.rgb_to_grayscale(image, num_output_channels=3) for image in images], masks


class RandomTPS:
    """With probability `p`, a thin-plate-spline warp moving `points` random control points.

    The points sit on distinct random rows and columns; each moves by Normal(0, scale x width) in x and
    Normal(0, scale x height) in y (scale 0.02 of a 384 crop: 7.7 pixels).
    """

    def __init__(self, p: float = 1 / 3, points: int = 12, scale: float = 0.02) -> None:
        self.p = p
        self.points = points
        self.scale = scale

    def __call__(self, images: list[Image.Image], masks: list[Image.Image]) -> Frames:
        if not _coin(self.p):
            return images, masks
        width, height = _same_size(images, masks)
        if min(width, height) < self.points:
            raise ValueError(f"a {width}x{height} image is too small for {self.points} TPS control points")
        xs = torch.randperm(width)[:self.points]
        ys = torch.randperm(height)[:self.points]
        source = torch.stack([xs, ys], dim=1).double()  # (N, 2) x, y pixels
        target = source + torch.randn(self.points, 2, dtype=torch.float64) * self.scale * torch.tensor(
            [width, height], dtype=torch.float64)
        maps = tps_maps(source.numpy(), target.numpy(), (height, width))
        images = [Image.fromarray(remap(np.asarray(image), maps, nearest=False, fill=MEAN_FILL)) for image in images]
        masks = [Image.fromarray(remap(np.asarray(mask), maps, nearest=True, fill=(0,))) for mask in masks]
        return images, masks


def to_sample(images: list[Image.Image], masks: list[Image.Image], targets: Sequence[int], name: str,
              frames: list[str]) -> dict:
    """The trainer's sample: normalised frames and the masks of up to two target labels.

    rgb (T, 3, H, W); gt, sec_gt (T, 1, H, W) in {0, 1} (all zero for a missing target); selector (2,) is
    [1, 1] with a second target, else [1, 0]; info has the sample's `name` and its `frames`.
    """
    if len(targets) > 2:
        raise ValueError(f"at most two target objects, got {list(targets)}")
    rgb = torch.stack([normalise(np.array(image)) for image in images])  # (T, 3, H, W)
    labels = torch.from_numpy(np.stack([np.asarray(mask) for mask in masks])).unsqueeze(1)  # (T, 1, H, W)
    gt = _label_mask(labels, targets[0] if targets else None)
    sec_gt = _label_mask(labels, targets[1] if len(targets) == 2 else None)
    selector = torch.tensor([1.0, 1.0 if len(targets) == 2 else 0.0])
    return {"rgb": rgb, "gt": gt, "sec_gt": sec_gt, "selector": selector, "info": {"name": name, "frames": frames}}


def _label_mask(labels: torch.Tensor, label: Optional[int]) -> torch.Tensor:
    """float32 {0, 1} mask of `label` in the label maps; all zeros when there is no such target."""
    return (labels == label).float() if label is not None else torch.zeros(labels.shape)
