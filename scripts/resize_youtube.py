"""Resize the YouTubeVOS training set so that every frame's shorter side is 480 pixels, like DAVIS 480p.

Frames are resampled bicubic (antialiased when shrinking) and saved as JPEG quality 95, palette masks
nearest-neighbour with their palette kept; meta.json is copied. Files already at the size are copied. The
output is written into a temporary folder beside --out and renamed when complete (an old --out is replaced).
Example: python scripts/resize_youtube.py --in ../YouTube/train --out ../YouTube/train_480p
"""
import argparse
import os
import sys

from dataset.resize import resize_youtube
from util.cli import ArgumentParser, existing_folder, output_folder, run_cli


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


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    count = resize_youtube(args.source, args.out, args.size, args.workers)
    print(f"resized {count} videos to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
