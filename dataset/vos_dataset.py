"""Video training sets (supplementary F.3.2, F.3.3): three temporally ordered frames and up to two objects
(other counts with a `ClipSpec`).

DAVIS 2017 train (480p) and YouTubeVOS train (resized to 480p by scripts/resize_youtube.py, every 5th
frame stored) for main training, BL30K for stage 1. Randomness: torch's global generator only (see
`dataset.augment`).
"""
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from dataset import curriculum
from dataset.augment import (
    ColourJitter,
    Compose,
    PerFrame,
    RandomAffine,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    to_sample,
)
from dataset.sampling import FRAMES, MAX_TARGETS, ClipSpec
from util.fileio import InputError
from util.imageio import entries, read_image, read_list, read_mask

MAX_TRIALS = 5  # frame draws per sample before giving up on finding an object in the first frame
DAVIS_REPEATS = 5  # DAVIS is listed 5 times per YouTubeVOS listing (F.3.2)
CROP_SCALE = (0.36, 1.0)
CROP_RATIO = (0.75, 1.25)
BL30K_CROP_SCALE = (0.25, 1.0)
BL30K_MIN_OBJECT_PIXELS = 100


@dataclass(frozen=True)
class VideoFolders:
    """Where a video set keeps frames (`images/<video>/<frame>.jpg`) and masks (`masks/<video>/<frame>.png`).

    `video_list` names the videos to use (all folders of `images` when None); `stride` is the number of
    video frames between two stored frames (5 for YouTubeVOS), the unit of the curriculum's frame distance.
    A `subset` list may name videos that are not there (a list made for another release): they are
    skipped with a note, where a set's own list naming a missing video is an error.
    """

    images: Path
    masks: Path
    video_list: Optional[Path] = None
    stride: int = 1
    subset: bool = False


def davis_folders(davis_root: Union[str, Path]) -> VideoFolders:
    """DAVIS 2017 train at 480p under `<davis_root>/2017/trainval`."""
    root = Path(davis_root) / "2017" / "trainval"
    return VideoFolders(root / "JPEGImages" / "480p", root / "Annotations" / "480p",
                        root / "ImageSets" / "2017" / "train.txt")


def youtube_folders(yv_root: Union[str, Path], video_list: Optional[Union[str, Path]] = None) -> VideoFolders:
    """YouTubeVOS train resized to 480p under `<yv_root>/train_480p` (every 5th frame stored).

    `video_list` restricts it to the videos it names (the authors train on such a filtered list).
    """
    root = Path(yv_root) / "train_480p"
    return VideoFolders(root / "JPEGImages", root / "Annotations",
                        Path(video_list) if video_list is not None else None, stride=5,
                        subset=video_list is not None)


def bl30k_folders(bl_root: Union[str, Path]) -> VideoFolders:
    """BL30K under `<bl_root>/{JPEGImages,Annotations}/<video>`."""
    root = Path(bl_root)
    return VideoFolders(root / "JPEGImages", root / "Annotations")


def _frame_stems(folders: VideoFolders, video: str) -> list[str]:
    """Name-ordered stems of the video's frames that have both a .jpg and a .png mask."""
    image_dir, mask_dir = folders.images / video, folders.masks / video
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise InputError(f"{folder}: folder of video {video} not found")
    masks = {path.stem for path in entries(mask_dir, "*.png")}
    return [path.stem for path in entries(image_dir, "*.jpg") if path.stem in masks]


def list_videos(folders: VideoFolders, min_frames: int = FRAMES) -> dict[str, list[str]]:
    """{video: frame stems} of the videos with at least `min_frames` annotated frames (shorter ones are
    skipped)."""
    if folders.video_list is not None:
        names = read_list(folders.video_list)
        if folders.subset:
            absent = {name for name in names if not (folders.images / name).is_dir()}
            missing = [name for name in names if name in absent]
            present = [name for name in names if name not in absent]
            if not present:
                raise InputError(f"{folders.video_list}: none of its {len(names)} videos is in {folders.images}")
            if missing:
                print(f"{folders.video_list}: {len(missing)} of {len(names)} listed videos are not in "
                      f"{folders.images} (e.g. {missing[0]}); training on the other {len(present)}")
            names = present
    elif folders.images.is_dir():
        names = [path.name for path in entries(folders.images) if path.is_dir()]
    else:
        raise InputError(f"{folders.images}: video frame folder not found")
    videos = {name: _frame_stems(folders, name) for name in names}
    videos = {name: stems for name, stems in videos.items() if len(stems) >= min_frames}
    if not videos:
        raise InputError(f"{folders.images}: no video with at least {min_frames} annotated frames")
    return videos


def pick_frames(num_frames: int, max_jump: int, count: int = FRAMES) -> list[int]:
    """`count` increasing frame indices whose consecutive gaps are in [1, max_jump]; reversed half the time.

    Each gap is uniform over what fits in the video with room left for the gaps after it, and the start is
    uniform over what is left, so that neither gap sizes nor positions lean towards the ends of the video.
    """
    if count < 2 or num_frames < count or max_jump < 1:
        raise ValueError(f"cannot pick {count} frames out of {num_frames} with max_jump {max_jump}")
    gaps: list[int] = []
    for later_gaps in range(count - 2, -1, -1):
        room = num_frames - 1 - sum(gaps) - later_gaps
        gaps.append(int(torch.randint(1, min(max_jump, room) + 1, ())))
    start = int(torch.randint(0, num_frames - sum(gaps), ()))
    indices = list(accumulate(gaps, initial=start))
    return indices[::-1] if torch.rand(1).item() < 0.5 else indices


def pick_objects(first_mask: np.ndarray, min_pixels: int = 0, max_targets: int = MAX_TARGETS) -> list[int]:
    """Up to `max_targets` distinct random labels among the objects of the first frame with at least
    `min_pixels`."""
    labels, counts = np.unique(first_mask, return_counts=True)
    candidates = [int(label) for label, count in zip(labels, counts) if label != 0 and count >= min_pixels]
    order = torch.randperm(len(candidates))[:max_targets]
    return [candidates[i] for i in order.tolist()]


class VOSDataset(curriculum.FrameGapCurriculum, Dataset):
    """Samples of three frames of one video, augmented together then per frame, and up to two target objects
    (`clip`: other counts).

    Shared: horizontal flip, random resized crop to `crop_size` (area `crop_scale`, aspect (0.75, 1.25)),
    colour jitter (0.1, 0.03, 0.03), grayscale p=0.05. Per frame: random affine (rotation +-15, shear +-10),
    colour jitter (0.01, 0.01, 0.01). Targets are drawn among the labels of the augmented first frame with
    at least `min_object_pixels` pixels there (counted at the crop resolution, after every augmentation);
    when there is none the frames are drawn again, up to 5 times, after which `gt` is all zeros.
    `max_jump` (stored frames) defaults to the curriculum's first value; `set_max_jump` changes it.
    """

    def __init__(self, folders: VideoFolders, crop_size: int = 384, crop_scale: tuple[float, float] = CROP_SCALE,
                 min_object_pixels: int = 0, max_jump: Optional[int] = None, clip: ClipSpec = ClipSpec()) -> None:
        self.folders = folders
        self.stride = folders.stride
        self.min_object_pixels = min_object_pixels
        self.clip = clip
        self.frames = list_videos(folders, clip.frames)
        self.videos = list(self.frames)
        self.set_max_jump(max_jump if max_jump is not None else curriculum.max_jump(0, self.stride))
        self.shared = Compose([
            RandomHorizontalFlip(),
            RandomResizedCrop(crop_size, crop_scale, CROP_RATIO),
            ColourJitter(0.1, 0.03, 0.03),
            RandomGrayscale(0.05),
        ])
        self.per_frame = PerFrame(Compose([
            RandomAffine(degrees=15, shear=10),
            ColourJitter(0.01, 0.01, 0.01),
        ]))

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, video: str, stems: list[str]) -> tuple[list[Image.Image], list[Image.Image]]:
        """The RGB frames and label masks of `stems`; InputError if a mask's size differs from its frame's."""
        images, masks = [], []
        for stem in stems:
            image = read_image(self.folders.images / video / f"{stem}.jpg")
            mask_path = self.folders.masks / video / f"{stem}.png"
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise InputError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, "
                                 f"frame {image.shape[1]}x{image.shape[0]}")
            images.append(Image.fromarray(image))
            masks.append(Image.fromarray(mask))
        return images, masks

    def __getitem__(self, index: int) -> dict:
        video = self.videos[index]
        stems = self.frames[video]
        for _ in range(MAX_TRIALS):
            chosen = [stems[i] for i in pick_frames(len(stems), self.max_jump, self.clip.frames)]
            images, masks = self.per_frame(*self.shared(*self._load(video, chosen)))
            targets = pick_objects(np.asarray(masks[0]), self.min_object_pixels, self.clip.max_targets)
            if targets:
                break
        return to_sample(images, masks, targets, name=video, frames=[f"{stem}.jpg" for stem in chosen])


def davis_train(davis_root: Union[str, Path], crop_size: int = 384, clip: ClipSpec = ClipSpec()) -> VOSDataset:
    """DAVIS 2017 train, 480p."""
    return VOSDataset(davis_folders(davis_root), crop_size, clip=clip)


def youtube_train(yv_root: Union[str, Path], crop_size: int = 384,
                  video_list: Optional[Union[str, Path]] = None, clip: ClipSpec = ClipSpec()) -> VOSDataset:
    """YouTubeVOS train at 480p (frame distances in stored frames, i.e. 5 video frames each)."""
    return VOSDataset(youtube_folders(yv_root, video_list), crop_size, clip=clip)


def bl30k_train(bl_root: Union[str, Path], crop_size: int = 384, clip: ClipSpec = ClipSpec()) -> VOSDataset:
    """BL30K (F.3.3): crop scale (0.25, 1.0) and objects under 100 pixels in the first frame never targets."""
    return VOSDataset(bl30k_folders(bl_root), crop_size, crop_scale=BL30K_CROP_SCALE,
                      min_object_pixels=BL30K_MIN_OBJECT_PIXELS, clip=clip)


def repeat_concat(parts: Sequence[tuple[Dataset, int]]) -> ConcatDataset:
    """One dataset listing each part `repeats` times (the same object, so its settings stay shared)."""
    return ConcatDataset([dataset for dataset, repeats in parts for _ in range(repeats)])


def main_training_set(davis_root: Union[str, Path], yv_root: Union[str, Path], crop_size: int = 384,
                      youtube_list: Optional[Union[str, Path]] = None, clip: ClipSpec = ClipSpec()) -> ConcatDataset:
    """DAVIS x5 + YouTubeVOS (optionally only the videos `youtube_list` names): stages 2 and 3."""
    return repeat_concat([(davis_train(davis_root, crop_size, clip), DAVIS_REPEATS),
                          (youtube_train(yv_root, crop_size, youtube_list, clip), 1)])
