"""`stcn.load` and `Segmenter.segment`: the inference core behind a call that takes what a user has
(a video file, a folder of frames, arrays or PIL images) and yields one label map per frame."""
import itertools
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Union

import numpy as np
import torch
from PIL import Image

from inference.config import FLAG_RULES, RunOptions
from inference.core import MemorySchedule
from inference.runner import propagate
from inference.sources import video_frames
from model.checkpoint import load_network
from model.network import MemoryNetwork
from util.distributed import pick_device
from util.fileio import InputError
from util.imageio import list_images, read_image, read_mask

Frames = Union[str, Path, Iterable[Union[np.ndarray, Image.Image]]]
Mask = Union[np.ndarray, Image.Image, str, Path]

# The settings of `segment` are the evaluation flags (inference/config.py) under these names.
SETTING_FLAGS = {"top_k": "top", "mem_every": "mem_every", "max_mem_frames": "max_mem_frames",
                 "kmn_sigma": "kmn_sigma", "size": "size"}


def load(weights: Union[str, Path], device: Union[str, torch.device, None] = None,
         similarity: Optional[str] = None) -> "Segmenter":
    """The network of `weights` (released `stcn.pth`, a stage checkpoint or one trained here) prepared as
    the evaluation scripts prepare it: eval mode, BatchNorm folded. device: "cpu", "cuda" or None (auto)."""
    if isinstance(device, torch.device):
        device = device.type
    device = pick_device("auto" if device is None else device)
    return Segmenter(load_network(Path(weights), device, similarity), device)


class Segmenter:
    """A network ready for inference on `device`; `segment` propagates given masks through a video."""

    def __init__(self, network: MemoryNetwork, device: torch.device) -> None:
        self.network = network
        self.device = device

    def segment(self, frames: Frames, masks: Mapping[int, Mask], *, top_k: int = 20, mem_every: int = 5,
                include_last: bool = False, max_mem_frames: Optional[int] = None,
                kmn_sigma: Optional[float] = None, size: Optional[int] = None, flip: bool = False,
                exact_decode: bool = False, amp: bool = False) -> Iterator[np.ndarray]:
        """Yield one H x W uint8 label map per frame, at the frame's size, with the masks' own labels.

        frames: a video file, a folder of images, or an iterable of H x W x 3 uint8 arrays or PIL images.
        masks: {frame index: label map (array, PIL image or PNG path)}; a mask introduces the objects not
        given before, so objects may first appear at later frames. Frames before the first mask are all
        background. The settings are the evaluation flags' (`top_k` is `--top`). Frames are read and
        segmented one at a time: memory grows with the memory bank, not with the video.
        """
        settings = dict(top_k=top_k, mem_every=mem_every, max_mem_frames=max_mem_frames, kmn_sigma=kmn_sigma,
                        size=size)
        _check_settings(settings)
        if not masks:
            raise ValueError("masks: give the mask of at least one frame, e.g. {0: first_mask}")
        schedule = MemorySchedule(mem_every, include_last, top_k, max_mem_frames, kmn_sigma)
        options = RunOptions(self.device, amp, size, flip=flip, exact_decode=exact_decode)
        numbered = _with_masks(_images(frames), masks)
        for index, image, mask in numbered:  # nothing to propagate before the first mask
            if mask is not None:
                break
            yield np.zeros(image.shape[:2], np.uint8)
        else:
            return
        for done in propagate(self.network, itertools.chain([(index, image, mask)], numbered), schedule, options):
            yield done.labels


def _check_settings(settings: dict) -> None:
    """A ValueError naming the first setting that the evaluation flags' rules refuse."""
    for name, value in settings.items():
        valid, expected = FLAG_RULES[SETTING_FLAGS[name]]
        if value is not None and not valid(value):
            raise ValueError(f"{name}={value}: {expected}")


def _images(frames: Frames) -> Iterator[np.ndarray]:
    """RGB uint8 arrays (H, W, 3), one at a time, from a video file, a folder or an iterable of images."""
    if isinstance(frames, (str, Path)):
        path = Path(frames)
        if path.is_dir():
            return (read_image(image) for image in list_images(path))
        if not path.is_file():
            raise InputError(f"{path}: no such video file or frame folder")
        return _video(path)
    return (_as_rgb(image, index) for index, image in enumerate(frames))


def _video(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video file; an InputError if it has none that OpenCV can decode."""
    count = 0
    for count, image in enumerate(video_frames(path), start=1):
        yield image
    if count == 0:
        raise InputError(f"{path}: cannot read the video (empty or unsupported)")


def _as_rgb(image: Union[np.ndarray, Image.Image], index: int) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an H x W x 3 uint8 array or a PIL image, "
                         f"got {array.dtype} of shape {array.shape}")
    return array


def _as_labels(mask: Mask, index: int) -> np.ndarray:
    """A label map (H, W) uint8; PNG paths are read as the scripts read annotations (palette, grey, RGB
    in the DAVIS colours)."""
    if isinstance(mask, (str, Path)):
        return read_mask(Path(mask))
    if isinstance(mask, Image.Image):
        if mask.mode not in ("P", "L", "1", "I", "I;16"):
            raise ValueError(f"mask of frame {index}: a {mask.mode} image is not a label map (give its PNG path "
                             "to read DAVIS colours, or an array of labels)")
        mask = np.asarray(mask)
    array = np.asarray(mask)
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"mask of frame {index}: expected an H x W array of integer labels, "
                         f"got {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"mask of frame {index}: labels must be 0..255")
    return array.astype(np.uint8)


def _with_masks(images: Iterator[np.ndarray], masks: Mapping[int, Mask]) -> Iterator[tuple]:
    """(index, image, label map or None); checks each mask against its frame and that every mask's
    frame exists."""
    count = 0
    for count, image in enumerate(images, start=1):
        index = count - 1
        mask = None
        if index in masks:
            mask = _as_labels(masks[index], index)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"mask of frame {index} is {mask.shape[1]}x{mask.shape[0]} but the frame is "
                                 f"{image.shape[1]}x{image.shape[0]}")
        yield index, image, mask
    beyond = sorted(i for i in masks if not 0 <= i < count)
    if beyond:
        raise ValueError(f"masks given for frames {beyond}, but the video has {count} frames")
