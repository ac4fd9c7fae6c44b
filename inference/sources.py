"""Frame sources: what a video is made of (frame files or a video file, masks, frames to output).

A `Video` only describes the frames; pixels are read lazily, one frame at a time, by the runner's
background reader, so that no source ever holds a whole video in memory.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from util.fileio import InputError
from util.imageio import entries, list_images, read_davis_sequences, read_image, read_mask


@dataclass
class FrameInfo:
    """One frame of a video: where its pixels are, its given mask (if any), and whether to output it."""

    name: str  # output file stem, e.g. "00000"
    image_path: Optional[Path] = None  # None for frames of a video file
    mask_path: Optional[Path] = None
    required: bool = True


@dataclass
class Video:
    """A video to segment. `merge_labels` turns every object into label 1 (DAVIS 2016)."""

    name: str
    frames: list[FrameInfo]
    video_file: Optional[Path] = None
    first_mask: Optional[Path] = None  # the mask of frame 0 of a video file
    merge_labels: bool = False
    palette: Optional[list[int]] = field(default=None, repr=False)

    def annotated(self) -> list[bool]:
        return [f.mask_path is not None or (i == 0 and self.first_mask is not None)
                for i, f in enumerate(self.frames)]


def davis_split_root(davis_path: Path, split_folder: str = "trainval") -> Path:
    """`<davis_path>/<split_folder>` (trainval or test-dev), `davis_path` itself if it already is that
    folder (has ImageSets), or `<davis_path>/2017/<split_folder>` when given the folder above DAVIS 2017."""
    for root in (davis_path / split_folder, davis_path, davis_path / "2017" / split_folder):
        if (root / "ImageSets").is_dir():
            return root
    if not davis_path.is_dir():
        raise InputError(f"{davis_path}: no such folder")
    raise InputError(f"{davis_path}: no {split_folder}/ImageSets folder (is it the DAVIS root?)")


def full_resolution_folder(root: Path) -> str:
    """The full-resolution level of a DAVIS folder: `Full-Resolution` (2017) or `1080p` (the 2016 release)."""
    for name in ("Full-Resolution", "1080p"):
        if (root / "JPEGImages" / name).is_dir():
            return name
    raise InputError(f"{root / 'JPEGImages'}: no Full-Resolution (or 1080p) folder")


def davis_videos(root: Path, subset: str, year: int = 2017, resolution: str = "480p") -> list[Video]:
    """DAVIS: the set list (`ImageSets/<year>/<subset>.txt`, or DAVIS 2016 as released), frames in
    `JPEGImages/<res>`, only frame 0's mask used; for 2016 its objects are merged into one."""
    names = read_davis_sequences(root, subset, year)
    videos = []
    for name in names:
        images = list_images(root / "JPEGImages" / resolution / name)
        first_mask = root / "Annotations" / resolution / name / f"{images[0].stem}.png"
        if not first_mask.is_file():
            raise InputError(f"{first_mask}: first-frame mask not found")
        frames = [FrameInfo(p.stem, p) for p in images]
        frames[0].mask_path = first_mask
        videos.append(Video(name, frames, merge_labels=year == 2016))
    return videos


def youtube_videos(root: Path, split: str, output_all: bool = False) -> list[Video]:
    """YouTubeVOS: every frame from `all_frames/<split>_all_frames`, masks where objects first appear,
    output only the frames `<split>/meta.json` asks for (all with `output_all`)."""
    meta_path = root / split / "meta.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: not found (is --yv_path the YouTubeVOS root?)")
    try:
        meta = json.loads(meta_path.read_text())["videos"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(f"{meta_path}: not a YouTubeVOS meta.json ({error})") from None
    frame_root = root / "all_frames" / f"{split}_all_frames" / "JPEGImages"
    videos = []
    for name in sorted(meta):
        asked = {f for obj in meta[name]["objects"].values() for f in obj["frames"]}
        mask_dir = root / split / "Annotations" / name
        masks = {p.stem: p for p in entries(mask_dir, "*.png")}
        if not masks:
            raise InputError(f"{mask_dir}: no annotation PNGs for video {name}")
        frames = [FrameInfo(p.stem, p, masks.get(p.stem), output_all or p.stem in asked)
                  for p in list_images(frame_root / name)]
        missing = sorted(set(masks) - {f.name for f in frames})
        if missing:
            raise InputError(f"{mask_dir / (missing[0] + '.png')}: annotation without a frame in {frame_root / name}")
        videos.append(Video(name, frames))
    return videos


def folder_videos(root: Path) -> list[Video]:
    """Any folder in the DAVIS (`JPEGImages/480p/<video>`) or YouTube (`JPEGImages/<video>`) layout:
    every annotation PNG introduces the objects not seen before; every frame is output."""
    image_root = root / "JPEGImages"
    if (image_root / "480p").is_dir():
        image_root, mask_root = image_root / "480p", root / "Annotations" / "480p"
    else:
        mask_root = root / "Annotations"
    if not image_root.is_dir():
        raise InputError(f"{image_root}: no JPEGImages folder (expected a DAVIS or YouTubeVOS layout)")
    videos = []
    for folder in (p for p in entries(image_root) if p.is_dir()):
        masks = {p.stem: p for p in entries(mask_root / folder.name, "*.png")}
        frames = [FrameInfo(p.stem, p, masks.get(p.stem)) for p in list_images(folder)]
        if frames[0].mask_path is None and not masks:
            raise InputError(f"{mask_root / folder.name}: no annotation for video {folder.name}")
        videos.append(Video(folder.name, frames))
    if not videos:
        raise InputError(f"{image_root}: no video folders")
    return videos


def video_length(path: Path) -> int:
    """The number of frames of a video file (counted by decoding when the container does not say, as browser
    recordings often do not); an InputError if OpenCV cannot read it."""
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    if count <= 0 and capture.isOpened():
        while capture.grab():
            count += 1
    capture.release()
    if count <= 0:
        raise InputError(f"{path}: cannot read the video (missing, empty or unsupported)")
    return count


def video_file(path: Path, first_mask: Path) -> Video:
    """A video file (read with OpenCV) with the mask of its first frame."""
    count = video_length(path)
    if not first_mask.is_file():
        raise InputError(f"{first_mask}: first-frame mask not found")
    frames = [FrameInfo(f"{i:05d}") for i in range(count)]
    return Video(path.stem, frames, video_file=path, first_mask=first_mask)


def iterate_frames(video: Video, plan: list[bool]) -> Iterator[tuple[int, np.ndarray, Optional[np.ndarray]]]:
    """Yield (index, RGB image, mask or None) for the planned frames, checking that every frame has the first
    frame's size and every mask its frame's."""
    reader = video_frames(video.video_file) if video.video_file else None
    first_size = None
    for index, (frame, wanted) in enumerate(zip(video.frames, plan)):
        image = next(reader, None) if reader else None
        if reader and image is None:
            raise InputError(f"{video.video_file}: the video ended at frame {index} of {len(video.frames)}")
        if not wanted:
            continue
        if image is None:
            image = read_image(frame.image_path)
        first_size = first_size or (image.shape[:2], frame.image_path or video.video_file)
        if image.shape[:2] != first_size[0]:
            raise InputError(f"{frame.image_path}: frame is {image.shape[1]}x{image.shape[0]} but the video's first "
                             f"frame ({first_size[1].name}) is {first_size[0][1]}x{first_size[0][0]}; all frames of "
                             "a video must have one size")
        mask_path = video.first_mask if (reader and index == 0) else frame.mask_path
        mask = None
        if mask_path is not None:
            mask = read_mask(mask_path, video.merge_labels)
            if (problem := mask_size_problem(mask, image)) is not None:
                raise InputError(f"{mask_path}: {problem}")
        yield index, image, mask


def mask_size_problem(mask: np.ndarray, image: np.ndarray) -> Optional[str]:
    """What is wrong if a mask and its frame differ in size, else None."""
    if mask.shape == image.shape[:2]:
        return None
    return f"mask is {mask.shape[1]}x{mask.shape[0]} but its frame is {image.shape[1]}x{image.shape[0]}"


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """Frames of a video file as RGB arrays, decoded one at a time."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()

