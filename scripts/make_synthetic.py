"""Write a synthetic dataset in the on-disk layout of DAVIS, YouTubeVOS, the static image sets or BL30K.

Example: python scripts/make_synthetic.py --layout davis --out ../DAVIS/2017/trainval --videos 8 --frames 30
"""
import argparse
import sys

from dataset.synthetic_layouts import LAYOUTS, SyntheticSpec, write_layout
from util.cli import ArgumentParser, Renamed, output_folder, run_cli


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with counts and sizes checked."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", required=True, choices=sorted(LAYOUTS))
    parser.add_argument("--out", required=True, type=output_folder, help="dataset folder to create (replaced if it exists)")
    parser.add_argument("--videos", type=int, default=4,
                        help="videos per set; for static, images per folder (default 4)")
    parser.add_argument("--frames", type=int, default=30, help="frames per video (default 30)")
    parser.add_argument("--size", type=int, nargs=2, dest="frame_size", action=Renamed, new_name="--frame_size",
                        help=argparse.SUPPRESS)
    parser.add_argument("--frame_size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"),
                        help="frame size (default 480 854)")
    parser.add_argument("--objects", type=int, default=3, help="most objects per video (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fss_classes", type=int, default=2, help="static: FSS-1000 class folders (default 2)")
    args = parser.parse_args(argv)
    if min(args.videos, args.frames, args.fss_classes) < 1:
        parser.error("--videos, --frames and --fss_classes must be at least 1")
    if min(args.frame_size) < 16:
        parser.error("--frame_size must be at least 16 16")
    if not 1 <= args.objects <= 254:
        parser.error("--objects must be between 1 and 254")
    if args.seed < 0:
        parser.error("--seed must not be negative")
    return args


def main(argv: list[str]) -> int:
    """Generate the dataset described by the command line; exit code 2 if it cannot be made."""
    args = parse_args(argv)
    spec = SyntheticSpec(videos=args.videos, frames=args.frames, size=tuple(args.frame_size), max_objects=args.objects,
                         seed=args.seed, fss_classes=args.fss_classes)
    try:
        write_layout(args.layout, args.out, spec)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.layout} layout to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
