"""Write synthetic data in the on-disk layouts of DAVIS 2017 and 2016, YouTubeVOS 2019, the static image sets
and BL30K.

Files are what the real datasets' loaders read: RGB JPEG frames, palette PNG annotations with the DAVIS
palette (8-bit grayscale 0/255 PNG masks for the static sets), the same folder and file names, set lists
and meta.json. `write_layout` builds the whole dataset in a temporary folder and renames it into place.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

from dataset.synthetic import generate_image, generate_video, sample_rng
from util.fileio import atomic_dir
from util.imageio import write_indexed_png

YOUTUBE_STEP = 5  # YouTubeVOS keeps (and annotates) every 5th frame
STATIC_FOLDERS = ("DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small")


@dataclass(frozen=True)
class SyntheticSpec:
    """How much to generate: `videos` per set (images per folder for static), their length, size and seed."""
    videos: int
    frames: int
    size: tuple[int, int]
    max_objects: int
    seed: int = 0
    fss_classes: int = 2
    progress: bool = True


def frame_name(index: int) -> str:
    """The file stem of frame `index` in every layout: five digits, e.g. 00005."""
    return f"{index:05d}"


def _save_jpeg(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB frame as a JPEG (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="JPEG", quality=90)


def _save_binary_mask(path: Path, mask: np.ndarray) -> None:
    """Write a 0/1 mask as the static sets store it: an 8-bit grayscale PNG of 0 and 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask > 0).astype(np.uint8) * 255).save(path, format="PNG")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write one item per line (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _progress(items: list, spec: SyntheticSpec, description: str) -> Iterable:
    """`items` wrapped in a tqdm bar when the spec asks for progress."""
    return tqdm(items, desc=description, disable=not spec.progress)


def _split(names: list[str]) -> tuple[list[str], list[str]]:
    """(train, val): the last quarter (at least one) is val; a single sequence is in both."""
    if len(names) == 1:
        return names, names
    val_count = max(1, round(len(names) / 4))
    return names[:-val_count], names[-val_count:]


def _write_full_video(images: Path, annotations: Path, name: str, rng: np.random.Generator,
                      spec: SyntheticSpec) -> None:
    """One video with a JPEG and a palette PNG for every frame, under `images/name` and `annotations/name`."""
    video = generate_video(rng, spec.frames, spec.size, spec.max_objects)
    for t in range(spec.frames):
        _save_jpeg(images / name / f"{frame_name(t)}.jpg", video.frames[t])
        write_indexed_png(annotations / name / f"{frame_name(t)}.png", video.labels[t])


def write_davis(root: Path, spec: SyntheticSpec) -> None:
    """DAVIS 2017: JPEGImages/480p, Annotations/480p (every frame) and ImageSets/2017, 2016 (same split)."""
    names = [f"synth-{i:04d}" for i in range(spec.videos)]
    for i, name in enumerate(_progress(names, spec, "davis")):
        _write_full_video(root / "JPEGImages" / "480p", root / "Annotations" / "480p", name,
                          sample_rng(spec.seed, i, "davis"), spec)
    train, val = _split(names)
    for year in ("2016", "2017"):
        _write_lines(root / "ImageSets" / year / "train.txt", train)
        _write_lines(root / "ImageSets" / year / "val.txt", val)


def write_davis2016(root: Path, spec: SyntheticSpec) -> None:
    """DAVIS 2016 as released: JPEGImages/480p and Annotations/480p with one object per video as an 8-bit
    grey 0/255 PNG, and ImageSets/480p/<set>.txt listing an image and a mask path per frame."""
    names = [f"synth-{i:04d}" for i in range(spec.videos)]
    for i, name in enumerate(_progress(names, spec, "davis2016")):
        video = generate_video(sample_rng(spec.seed, i, "davis2016"), spec.frames, spec.size, spec.max_objects)
        for t in range(spec.frames):
            _save_jpeg(root / "JPEGImages" / "480p" / name / f"{frame_name(t)}.jpg", video.frames[t])
            _save_binary_mask(root / "Annotations" / "480p" / name / f"{frame_name(t)}.png", video.labels[t])
    for subset, subset_names in zip(("train", "val"), _split(names)):
        _write_lines(root / "ImageSets" / "480p" / f"{subset}.txt",
                     [f"/JPEGImages/480p/{name}/{frame_name(t)}.jpg /Annotations/480p/{name}/{frame_name(t)}.png"
                      for name in subset_names for t in range(spec.frames)])


def write_bl30k(root: Path, spec: SyntheticSpec) -> None:
    """BL30K: JPEGImages/<video> and Annotations/<video> with every frame, no resolution level."""
    for i in _progress(list(range(spec.videos)), spec, "bl30k"):
        _write_full_video(root / "JPEGImages", root / "Annotations", f"synth-{i:04d}",
                          sample_rng(spec.seed, i, "bl30k"), spec)


def _object_ids(rng: np.random.Generator, count: int) -> list[int]:
    """`count` increasing object ids that are never simply 1..count, as YouTubeVOS ids may skip numbers."""
    ids = sorted(int(i) for i in rng.choice(np.arange(1, 2 * count + 2), size=count, replace=False))
    if ids == list(range(1, count + 1)):
        ids[-1] += 1
    return ids


def _youtube_video(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(frames, labels with YouTubeVOS-like ids, {id: category}); objects may first appear on later 5th frames."""
    video = generate_video(rng, spec.frames, spec.size, spec.max_objects, min_objects=min(2, spec.max_objects),
                           entry_step=YOUTUBE_STEP)
    ids = _object_ids(rng, len(video.categories))
    lookup = np.zeros(256, np.uint8)
    lookup[1:len(ids) + 1] = ids
    return video.frames, lookup[video.labels], dict(zip(ids, video.categories))


def _write_youtube_train(split: Path, name: str, rng: np.random.Generator, spec: SyntheticSpec) -> dict:
    """Every 5th frame with its full annotation; returns the video's meta.json entry."""
    frames, labels, categories = _youtube_video(rng, spec)
    kept = range(0, spec.frames, YOUTUBE_STEP)
    for t in kept:
        _save_jpeg(split / "JPEGImages" / name / f"{frame_name(t)}.jpg", frames[t])
        write_indexed_png(split / "Annotations" / name / f"{frame_name(t)}.png", labels[t])
    objects = {str(i): {"category": category, "frames": [frame_name(t) for t in kept if (labels[t] == i).any()]}
               for i, category in categories.items()}
    return {"objects": objects}


def _write_youtube_valid(root: Path, name: str, rng: np.random.Generator, spec: SyntheticSpec) -> dict:
    """Every 5th frame, every frame under all_frames, and each object's mask on its first frame only."""
    frames, labels, categories = _youtube_video(rng, spec)
    kept = list(range(0, spec.frames, YOUTUBE_STEP))
    for t in range(spec.frames):
        _save_jpeg(root / "all_frames" / "valid_all_frames" / "JPEGImages" / name / f"{frame_name(t)}.jpg", frames[t])
    for t in kept:
        _save_jpeg(root / "valid" / "JPEGImages" / name / f"{frame_name(t)}.jpg", frames[t])
    first = {i: next(t for t in kept if (labels[t] == i).any()) for i in categories}
    for t in sorted(set(first.values())):
        new_ids = [i for i in categories if first[i] == t]
        write_indexed_png(root / "valid" / "Annotations" / name / f"{frame_name(t)}.png",
                          np.where(np.isin(labels[t], new_ids), labels[t], 0).astype(np.uint8))
    objects = {str(i): {"category": category, "frames": [frame_name(t) for t in kept if t >= first[i]]}
               for i, category in categories.items()}
    return {"objects": objects}


def _write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def write_youtube(root: Path, spec: SyntheticSpec) -> None:
    """YouTubeVOS 2019: train/ and valid/ (each with meta.json) and all_frames/valid_all_frames/."""
    names = [f"synth{i:05d}" for i in range(spec.videos)]
    train = {name: _write_youtube_train(root / "train", name, sample_rng(spec.seed, i, "youtube/train"), spec)
             for i, name in enumerate(_progress(names, spec, "youtube train"))}
    valid = {name: _write_youtube_valid(root, name, sample_rng(spec.seed, i, "youtube/valid"), spec)
             for i, name in enumerate(_progress(names, spec, "youtube valid"))}
    _write_json(root / "train" / "meta.json", {"videos": train})
    _write_json(root / "valid" / "meta.json", {"videos": valid})


def _write_image_pairs(folder: Path, stems: list[str], stream: str, spec: SyntheticSpec) -> None:
    """`stem`.jpg image and `stem`.png 0/255 mask pairs in `folder`."""
    for i, stem in enumerate(stems):
        rgb, mask = generate_image(sample_rng(spec.seed, i, stream), spec.size)
        _save_jpeg(folder / f"{stem}.jpg", rgb)
        _save_binary_mask(folder / f"{stem}.png", mask)


def write_static(root: Path, spec: SyntheticSpec) -> None:
    """FSS-1000 style fss/<class>/<n>.jpg+png and DUTS/ECSSD style name.jpg+png pairs; `videos` images each."""
    classes = [f"synth_class{c:03d}" for c in range(spec.fss_classes)]
    for name in _progress(classes, spec, "static fss"):
        _write_image_pairs(root / "fss" / name, [str(n) for n in range(1, spec.videos + 1)], f"static/fss/{name}",
                           spec)
    stems = [f"synth_{i:05d}" for i in range(spec.videos)]
    for folder in _progress(list(STATIC_FOLDERS), spec, "static sets"):
        _write_image_pairs(root / folder, stems, f"static/{folder}", spec)


LAYOUTS: dict[str, Callable[[Path, SyntheticSpec], None]] = {
    "davis": write_davis, "davis2016": write_davis2016, "youtube": write_youtube, "static": write_static, "bl30k": write_bl30k,
}


def write_layout(layout: str, out: Union[str, Path], spec: SyntheticSpec) -> None:
    """Generate a whole dataset of `layout` into `out`, atomically: it appears complete or not at all."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    with atomic_dir(out) as temporary:
        LAYOUTS[layout](temporary, spec)
