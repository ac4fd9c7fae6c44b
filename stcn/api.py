"""`stcn.load` and `Segmenter.segment`: the inference core behind a call that takes what a user has
(a video file, a folder of frames, arrays or PIL images) and yields one label map per frame."""
import itertools
import numbers
from contextlib import closing
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Union

import numpy as np
import torch
from PIL import Image

from inference.config import FLAG_RULES, RunOptions
from inference.core import MemorySchedule
from inference.runner import propagate
from inference.sources import mask_size_problem, video_frames, video_length
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
    the evaluation scripts prepare it: eval mode, BatchNorm folded. device: "cpu", "cuda[:N]" or None (auto)."""
    device = pick_device("auto" if device is None else str(device))
    return Segmenter(load_network(Path(weights), device, similarity), device)


class Segmenter:
    """A network ready for inference on `device`; `segment` propagates given masks through a video."""

    def __init__(self, network: MemoryNetwork, device: torch.device) -> None:
        self.network = network
        self.device = device

    def segment(self, frames: Frames, masks: Mapping[int, Mask], *, top_k: int = 20, mem_every: int = 5,
                include_last: bool = False, max_mem_frames: Optional[int] = None,
                kmn_sigma: Optional[float] = None, size: Optional[int] = None, flip: bool = False,
                local_decode: bool = False, amp: bool = False, whole_masks: bool = False) -> Iterator[np.ndarray]:
        """One H x W uint8 label map per frame, at the frame's size, with the masks' own labels (a generator).

        frames: a video file, a folder of images, or an iterable of H x W x 3 uint8 RGB arrays or PIL images.
        masks: {frame index: label map (array, PIL image, or PNG path)}; a mask brings in the objects not given
        before (objects known already keep propagating), or with `whole_masks` it is the truth for every object
        at its frame (a correction: known objects take it too). Frames before the first mask are all background.
        The settings are the evaluation flags' (`top_k` is `--top`). Frames are read and segmented one at a time: memory grows
        with the memory bank (a frame every `mem_every`; `max_mem_frames` caps it), not with the video.
        Arguments are checked at the call, the frames as they are read.
        """
        for name, value in dict(top_k=top_k, mem_every=mem_every, max_mem_frames=max_mem_frames,
                                kmn_sigma=kmn_sigma, size=size).items():
            valid, expected = FLAG_RULES[SETTING_FLAGS[name]]
            if value is not None and not valid(value):
                raise ValueError(f"{name}={value}: {expected}")
        _check_mask_indices(masks)
        images = _images(frames)
        schedule = MemorySchedule(mem_every, include_last, top_k, max_mem_frames, kmn_sigma)
        options = RunOptions(self.device, amp, size, flip=flip, local_decode=local_decode, whole_masks=whole_masks)
        return self._labels(_with_masks(images, masks), schedule, options)

    def _labels(self, numbered: Iterator[tuple], schedule: MemorySchedule, options: RunOptions) -> Iterator[np.ndarray]:
        for index, image, mask in numbered:  # nothing to propagate before the first mask
            if mask is not None:
                break
            yield np.zeros(image.shape[:2], np.uint8)
        else:
            return
        frames = itertools.chain([(index, image, mask)], numbered)
        with closing(propagate(self.network, frames, schedule, options)) as segmented:
            for done in segmented:
                yield done.labels


def _check_mask_indices(masks: Mapping[int, Mask]) -> None:
    if not masks:
        raise ValueError("masks: give the mask of at least one frame, e.g. {0: first_mask}")
    bad = [index for index in masks if not isinstance(index, numbers.Integral) or index < 0]
    if bad:
        raise ValueError(f"masks: frame indices must be integers from 0, got {bad[0]!r}")


def _images(frames: Frames) -> Iterator[np.ndarray]:
    """RGB uint8 arrays (H, W, 3), one at a time, from a video file, a folder or an iterable of images."""
    if isinstance(frames, (str, Path)):
        path = Path(frames)
        if path.is_dir():
            return (read_image(image) for image in list_images(path))
        if not path.is_file():
            raise InputError(f"{path}: no such video file or frame folder")
        video_length(path)  # readable
        return video_frames(path)
    return (_as_rgb(image, index) for index, image in enumerate(frames))


def _as_rgb(image: Union[np.ndarray, Image.Image], index: int) -> np.ndarray:
    """A copy of the frame (sources may refill one buffer; frames are read ahead), contiguous."""
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an H x W x 3 uint8 array or a PIL image, "
                         f"got {array.dtype} of shape {array.shape}")
    return np.array(array, order="C")


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
    """(index, image, label map or None); checks that frames keep their size, that each mask fits its
    frame and that every mask's frame exists."""
    count, first_shape = 0, None
    for index, image in enumerate(images):
        count = index + 1
        first_shape = first_shape or image.shape
        if image.shape != first_shape:
            raise ValueError(f"frame {index} is {image.shape[1]}x{image.shape[0]} but frame 0 is "
                             f"{first_shape[1]}x{first_shape[0]}")
        mask = None
        if index in masks:
            mask = _as_labels(masks[index], index)
            if (problem := mask_size_problem(mask, image)) is not None:
                raise ValueError(f"mask of frame {index}: {problem}")
        yield index, image, mask
    beyond = sorted(i for i in masks if i >= count)
    if beyond:
        raise ValueError(f"masks given for frames {beyond}, but the video has {count} frames")
