"""Training sets that draw a fresh synthetic video (or image) for every sample, in memory.

A fixed set of a few dozen synthetic videos is fitted long before the network generalises to unseen
videos; here every sample is a new video from `dataset.synthetic.generate_video`, drawn from the sample's
own seed (torch's global generator, which `dataset.sampling.SeededSamples` seeds per sample), so a run is
reproducible, independent of the number of loader workers, and resumes exactly.

`SyntheticVideoDataset` gives what `VOSDataset` gives (three temporally ordered frames, up to two target
objects, or what a `ClipSpec` asks for; it follows the curriculum through `set_max_jump`);
`SyntheticStaticDataset` gives what `StaticDataset` gives (three frames warped from one image, one
object), with the same augmentations.
"""
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dataset import curriculum
from dataset.augment import Compose, RandomCrop, RandomHorizontalFlip, to_sample
from dataset.sampling import FRAMES, ClipSpec
from dataset.static_dataset import ImageToClip
from dataset.synthetic import generate_image, generate_video, sample_rng
from dataset.vos_dataset import MAX_TRIALS, pick_frames, pick_objects

DEFAULT_LENGTH = 10_000  # samples per "epoch"; only the sampler's shuffling period, every sample is new


def _sample_rng(pool: int = 0) -> np.random.Generator:
    """The numpy generator a sample's video (or image) is drawn from, picked with torch's global generator
    (seeded per sample by SeededSamples): a new one every time, or with `pool` > 0 one of `pool` fixed ones
    (a finite training set of `pool` videos, to measure what the endless stream brings)."""
    if pool > 0:
        return sample_rng(0, int(torch.randint(0, pool, ())), "synthetic-pool")
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class SyntheticVideoDataset(curriculum.FrameGapCurriculum, Dataset):
    """Three frames of a freshly generated `num_frames`-frame video of `size` (H, W) and up to two targets
    (`clip`: other counts).

    Frames are picked as `VOSDataset` picks them (consecutive gaps up to `max_jump`, reversed half the time);
    the frames are flipped left-right with probability 0.5 and, with a `crop_size` that fits, cropped to a
    random `crop_size` square (the same window for the three frames); a `crop_size` of at least the longer
    side (the paper's 384 on small frames) keeps whole frames. Targets are drawn among the objects of the
    first (cropped) frame; when there is none, other frames are drawn, up to 5 times. `pool` > 0 draws the
    videos from a fixed set of that many instead of a new one per sample.
    """

    def __init__(self, size: tuple[int, int] = (96, 160), num_frames: int = 20, max_objects: int = 3,
                 crop_size: Optional[int] = None, length: int = DEFAULT_LENGTH, max_jump: Optional[int] = None,
                 pool: int = 0, clip: ClipSpec = ClipSpec()) -> None:
        if num_frames < clip.frames:
            raise ValueError(f"videos need at least {clip.frames} frames, got {num_frames}")
        if crop_size is not None and min(size) < crop_size < max(size):
            raise ValueError(f"crop {crop_size} does not fit in frames of {size[0]}x{size[1]} (give at most "
                             f"{min(size)} for square crops, or at least {max(size)} for whole frames)")
        self.size = tuple(size)
        self.num_frames = num_frames
        self.max_objects = max_objects
        self.length = length
        self.pool = pool
        self.clip = clip
        steps = [RandomHorizontalFlip()]
        if crop_size is not None and crop_size <= min(size):
            steps.append(RandomCrop(crop_size))
        self.transform = Compose(steps)
        self.set_max_jump(max_jump if max_jump is not None else curriculum.max_jump(0))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        video = generate_video(_sample_rng(self.pool), self.num_frames, self.size, self.max_objects)
        for _ in range(MAX_TRIALS):
            chosen = pick_frames(self.num_frames, self.max_jump, self.clip.frames)
            images = [Image.fromarray(video.frames[t]) for t in chosen]
            masks = [Image.fromarray(video.labels[t]) for t in chosen]
            images, masks = self.transform(images, masks)
            targets = pick_objects(np.asarray(masks[0]), max_targets=self.clip.max_targets)
            if targets:
                break
        return to_sample(images, masks, targets, name=f"synthetic-{index}", frames=[f"{t:05d}" for t in chosen])


class SyntheticStaticDataset(Dataset):
    """Stage-0 style samples from freshly generated one-object images of `size` (H, W), augmented as
    `StaticDataset` augments (shared scale/flip/jitter, then per frame affine, resize and crop to
    `crop_size`, jitter, TPS); `pool` > 0 draws the images from a fixed set of that many."""

    def __init__(self, size: tuple[int, int] = (96, 160), crop_size: int = 96, length: int = DEFAULT_LENGTH,
                 pool: int = 0) -> None:
        self.size = tuple(size)
        self.length = length
        self.pool = pool
        self.augment = ImageToClip(crop_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        rgb, mask = generate_image(_sample_rng(self.pool), self.size)
        images, masks = self.augment(Image.fromarray(rgb), Image.fromarray(mask))
        return to_sample(images, masks, targets=[1], name=f"synthetic-image-{index}", frames=["image"] * FRAMES)
