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
import sys

from dataset.resize import resize_static
from util.cli import ArgumentParser, existing_folder, output_folder, run_cli


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


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    count = resize_static(args.source, args.masks if args.masks is not None else args.source, args.out,
                          args.image_suffix, args.mask_suffix, args.max_size, args.workers)
    print(f"wrote {count} image + mask pairs to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
