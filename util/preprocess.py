"""Frame preprocessing shared by training and inference: ImageNet normalisation (and back) and /16 padding."""
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Pads = tuple[int, int, int, int]  # left, right, top, bottom (the order F.pad takes)


def normalise(rgb: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> float (3, H, W): divided by 255, then ImageNet mean/std normalised."""
    image = torch.as_tensor(np.asarray(rgb)).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return image.sub_(mean).div_(std)


def denormalise(rgb: torch.Tensor) -> torch.Tensor:
    """Normalised float (..., 3, H, W) -> RGB in [0, 1], for pictures of training samples."""
    mean = torch.tensor(IMAGENET_MEAN, device=rgb.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=rgb.device).view(3, 1, 1)
    return (rgb * std + mean).clamp(0, 1)


def pad_to_multiple(x: torch.Tensor, multiple: int = 16) -> tuple[torch.Tensor, Pads]:
    """Zero-pad the last two dimensions up to a multiple, floor(extra / 2) on top/left, the rest after."""
    height, width = x.shape[-2:]
    extra_h = -height % multiple
    extra_w = -width % multiple
    pads = (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2)
    return (F.pad(x, pads) if any(pads) else x), pads


def unpad(x: torch.Tensor, pads: Pads) -> torch.Tensor:
    """Remove the padding that `pad_to_multiple` added."""
    left, right, top, bottom = pads
    height, width = x.shape[-2:]
    return x[..., top:height - bottom, left:width - right]
