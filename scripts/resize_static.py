"""Shrink image + mask pairs (BIG, HRSOD) so that the longer edge is at most 512 pixels: BIG_small, HRSOD_small.

Every `<name><image_suffix>` under --in (any depth) is paired with `<name><mask_suffix>` at the same relative
place under --masks (default: --in) and written as `<name>.jpg` (bicubic, antialiased, JPEG quality 95) and
`<name>.png` (nearest-neighbour, grey or palette mode kept) at the same relative place under --out; pairs
already small enough are copied. The output is written into a temporary folder beside --out and renamed when
complete (an old --out is replaced).
Examples: python scripts/resize_static.py --in BIG/train --out ../static/BIG_small --image_suffix _im.jpg
              --mask_suffix _gt.png
          python scripts/resize_static.py --in HRSOD/HRSOD_train --masks HRSOD/HRSOD_train_mask
              --out ../static/HRSOD_small
"""
import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from PIL import Image
from tqdm import tqdm

from util.cli import ArgumentParser, existing_folder, output_folder, run_cli
from util.fileio import InputError, atomic_dir
from util.imageio import open_image

Pair = tuple[Path, Path, Path]  # (image, mask, output path relative to --out, without suffix)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="source", required=True, type=existing_folder, help="folder of the images")
    parser.add_argument("--masks", type=existing_folder, default=None, help="folder of the masks (default: --in)")
    parser.add_argument("--out", required=True, type=output_folder, help="folder to create, e.g. <static_root>/BIG_small")
    parser.add_argument("--image_suffix", default=".jpg", help="image file ending (default .jpg)")
    parser.add_argument("--mask_suffix", default=".png", help="mask file ending (default .png)")
    parser.add_argument("--max_size", type=int, default=512, help="longest edge in pixels (default 512)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.max_size < 1 or args.workers < 1:
        parser.error("--max_size and --workers must be at least 1")
    return args


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


def run_parallel(function: Callable, jobs: list, workers: int, description: str) -> list:
    """`function` over `jobs` in `workers` processes (inline for one), in order, with a progress bar."""
    if workers == 1:
        return [function(job) for job in tqdm(jobs, desc=description)]
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(function, jobs, chunksize=16), total=len(jobs), desc=description))


def resize_static(args: argparse.Namespace) -> int:
    """Write the shrunk copy of the pairs to --out; returns the number of pairs."""
    masks = args.masks if args.masks is not None else args.source
    for folder in (args.source, masks):
        if folder.resolve() == args.out.resolve() or folder.resolve() in args.out.resolve().parents:
            raise InputError(f"{args.out}: the output must not be an input folder or inside one")
    pairs = list_pairs(args.source, masks, args.image_suffix, args.mask_suffix)
    with atomic_dir(args.out) as temporary:
        run_parallel(resize_pair, [(pair, temporary, args.max_size) for pair in pairs], args.workers, "images")
    return len(pairs)


def main(argv: list[str]) -> int:
    """Resize; exit code 2 with a one-line message on bad input."""
    args = parse_args(argv)
    try:
        count = resize_static(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {count} image + mask pairs to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
