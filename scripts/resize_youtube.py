"""Resize the YouTubeVOS training set so that every frame's shorter side is 480 pixels, like DAVIS 480p.

Frames are resampled bicubic (antialiased when shrinking) and saved as JPEG quality 95, palette masks
nearest-neighbour with their palette kept; meta.json is copied. Files already at the size are copied. The
output is written into a temporary folder beside --out and renamed when complete (an old --out is replaced).
Example: python scripts/resize_youtube.py --in ../YouTube/train --out ../YouTube/train_480p
"""
import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from util.cli import ArgumentParser, existing_folder, output_folder, run_cli
from util.fileio import InputError, atomic_dir
from util.imageio import entries, open_image, read_indexed_png, write_indexed_png

FOLDERS = (("JPEGImages", ".jpg"), ("Annotations", ".png"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="source", required=True, type=existing_folder,
                        help="YouTubeVOS train folder (JPEGImages/, Annotations/, meta.json)")
    parser.add_argument("--out", required=True, type=output_folder, help="folder to create, e.g. <yv_root>/train_480p")
    parser.add_argument("--size", type=int, default=480, help="shorter side in pixels (default 480)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes, one video each at a time (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.size < 1 or args.workers < 1:
        parser.error("--size and --workers must be at least 1")
    return args


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


def list_videos(source: Path) -> list[str]:
    """The video names under `source`/JPEGImages; InputError if the layout is not a YouTubeVOS split."""
    for folder, _ in FOLDERS:
        if not (source / folder).is_dir():
            raise InputError(f"{source / folder}: not found (is --in the YouTubeVOS train folder?)")
    videos = [path.name for path in entries(source / "JPEGImages") if path.is_dir()]
    if not videos:
        raise InputError(f"{source / 'JPEGImages'}: no video folders")
    return videos


def run_parallel(function: Callable, jobs: list, workers: int, description: str) -> list:
    """`function` over `jobs` in `workers` processes (inline for one), in order, with a progress bar."""
    if workers == 1:
        return [function(job) for job in tqdm(jobs, desc=description)]
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(function, jobs), total=len(jobs), desc=description))


def resize_youtube(source: Path, out: Path, shorter: int, workers: int) -> int:
    """Write the resized copy of `source` to `out`; returns the number of videos."""
    if source.resolve() == out.resolve() or source.resolve() in out.resolve().parents:
        raise InputError(f"{out}: the output must not be --in or inside it")
    videos = list_videos(source)
    with atomic_dir(out) as temporary:
        run_parallel(resize_video, [(source, temporary, video, shorter) for video in videos], workers, "videos")
        if (source / "meta.json").is_file():
            shutil.copyfile(source / "meta.json", temporary / "meta.json")
    return len(videos)


def main(argv: list[str]) -> int:
    """Resize; exit code 2 with a one-line message on bad input."""
    args = parse_args(argv)
    try:
        count = resize_youtube(args.source, args.out, args.size, args.workers)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"resized {count} videos to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
