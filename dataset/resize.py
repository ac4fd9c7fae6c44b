"""Resizing training sets before training, as the authors did: static image + mask pairs shrunk to a longest
edge (BIG, HRSOD: scripts/resize_static.py) and YouTubeVOS frames to a shorter side of 480
(scripts/resize_youtube.py). Both write into a temporary folder and rename it when complete."""
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from util.fileio import InputError, atomic_dir
from util.imageio import entries, open_image, read_indexed_png, write_indexed_png

Pair = tuple[Path, Path, Path]  # (image, mask, output path relative to the output folder, without suffix)
FOLDERS = (("JPEGImages", ".jpg"), ("Annotations", ".png"))  # a YouTubeVOS split's frames and masks


def run_parallel(function: Callable, jobs: list, workers: int, description: str, chunksize: int = 1) -> list:
    """`function` over `jobs` in `workers` processes (inline for one), in order, with a progress bar."""
    if workers == 1:
        return [function(job) for job in tqdm(jobs, desc=description)]
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(function, jobs, chunksize=chunksize), total=len(jobs), desc=description))


def fitted_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """(width, height) scaled down so that the longer side is at most `max_size` (never enlarged)."""
    scale = max_size / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path: Path) -> Image.Image:
    """The loaded image at `path`; InputError naming it if it cannot be read."""
    with open_image(path) as image:
        return image


def resize_pair(job: tuple[Pair, Path, int]) -> None:
    """Write one image (bicubic, JPEG) and its mask (nearest, PNG) under `out`, shrunk to fit `max_size`."""
    (image_path, mask_path, relative), out, max_size = job
    out_stem = out / relative
    image, mask = _open(image_path), _open(mask_path)
    if image.size != mask.size:
        raise InputError(f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]}, image {image.size[0]}x{image.size[1]}")
    size = fitted_size(*image.size, max_size)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    if size == image.size and image_path.suffix.lower() == ".jpg":
        shutil.copyfile(image_path, out_stem.with_suffix(".jpg"))
    else:
        image.convert("RGB").resize(size, Image.BICUBIC).save(out_stem.with_suffix(".jpg"), format="JPEG", quality=95)
    if mask.mode not in ("1", "L", "P"):
        mask = mask.convert("L")
    if size == mask.size and mask_path.suffix.lower() == ".png":
        shutil.copyfile(mask_path, out_stem.with_suffix(".png"))
    else:
        mask.resize(size, Image.NEAREST).save(out_stem.with_suffix(".png"), format="PNG")


def list_pairs(source: Path, masks: Path, image_suffix: str, mask_suffix: str) -> list[Pair]:
    """Every image under `source` with its mask under `masks` and its relative output stem."""
    if not source.is_dir():
        raise InputError(f"{source}: no such folder")
    images = sorted(path for path in source.rglob(f"*{image_suffix}") if path.is_file())
    if not images:
        raise InputError(f"{source}: no *{image_suffix} images")
    pairs = []
    for image in images:
        relative = image.relative_to(source)
        stem = relative.name[:-len(image_suffix)]
        mask = masks / relative.parent / f"{stem}{mask_suffix}"
        if not mask.is_file():
            raise InputError(f"{mask}: mask of {image} not found")
        pairs.append((image, mask, relative.parent / stem))
    return pairs


def resize_static(source: Path, masks: Path, out: Path, image_suffix: str, mask_suffix: str, max_size: int,
                  workers: int) -> int:
    """Write the shrunk copy of the image + mask pairs to `out` (scripts/resize_static.py); returns how many."""
    for folder in (source, masks):
        if folder.resolve() == out.resolve() or folder.resolve() in out.resolve().parents:
            raise InputError(f"{out}: the output must not be an input folder or inside one")
    pairs = list_pairs(source, masks, image_suffix, mask_suffix)
    with atomic_dir(out) as temporary:
        run_parallel(resize_pair, [(pair, temporary, max_size) for pair in pairs], workers, "images", chunksize=16)
    return len(pairs)


def shorter_side_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is `shorter`."""
    scale = shorter / min(width, height)
    return (shorter, round(height * scale)) if width <= height else (round(width * scale), shorter)


def resize_frame(source: Path, target: Path, shorter: int) -> None:
    """Write the RGB frame `source` resized (bicubic) to `target` as a JPEG."""
    with open_image(source) as image:
        rgb = image.convert("RGB")
    size = shorter_side_size(*rgb.size, shorter)
    if size == rgb.size:
        shutil.copyfile(source, target)
    else:
        rgb.resize(size, Image.BICUBIC).save(target, format="JPEG", quality=95)


def resize_mask(source: Path, target: Path, shorter: int) -> None:
    """Write the palette mask `source` resized (nearest, same palette) to `target`."""
    labels, palette = read_indexed_png(source)
    height, width = labels.shape
    size = shorter_side_size(width, height, shorter)
    if size == (width, height):
        shutil.copyfile(source, target)
    else:
        write_indexed_png(target, np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST)), palette)


def resize_video(job: tuple[Path, Path, str, int]) -> str:
    """Resize one video's frames and masks (those of its folders that exist); returns its name."""
    source, target, video, shorter = job
    for (folder, suffix), resize in zip(FOLDERS, (resize_frame, resize_mask)):
        video_in = source / folder / video
        if not video_in.is_dir():
            continue
        video_out = target / folder / video
        video_out.mkdir(parents=True)
        for path in entries(video_in):
            if path.suffix.lower() == suffix:
                resize(path, video_out / path.name, shorter)
    return video


def youtube_videos(source: Path) -> list[str]:
    """The video names under `source`/JPEGImages; InputError if the layout is not a YouTubeVOS split."""
    for folder, _ in FOLDERS:
        if not (source / folder).is_dir():
            raise InputError(f"{source / folder}: not found (is --in the YouTubeVOS train folder?)")
    videos = [path.name for path in entries(source / "JPEGImages") if path.is_dir()]
    if not videos:
        raise InputError(f"{source / 'JPEGImages'}: no video folders")
    return videos


def resize_youtube(source: Path, out: Path, shorter: int, workers: int) -> int:
    """Write the copy of `source` at `shorter` pixels to `out` (scripts/resize_youtube.py); returns the number of
    videos."""
    if source.resolve() == out.resolve() or source.resolve() in out.resolve().parents:
        raise InputError(f"{out}: the output must not be --in or inside it")
    videos = youtube_videos(source)
    with atomic_dir(out) as temporary:
        run_parallel(resize_video, [(source, temporary, video, shorter) for video in videos], workers, "videos")
        if (source / "meta.json").is_file():
            shutil.copyfile(source / "meta.json", temporary / "meta.json")
    return len(videos)
