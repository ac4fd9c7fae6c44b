"""Evaluate STCN on DAVIS 2017 (val / test-dev) or DAVIS 2016 (val, all objects merged into one).

Writes <output>/<sequence>/<frame>.png (indexed, the annotations' palette, annotation size),
<output>/timing.json, with --zip <output>/submission.zip for the DAVIS server, and with --evaluate the
J&F tables (ground truth needed). Example:
  python eval_davis.py --model saves/stcn.pth --davis_path ../DAVIS/2017 --output output/d17
"""
import argparse
from pathlib import Path

from inference.config import EvalConfig, add_inference_args
from inference.outputs import write_zip
from inference.runner import run_inference
from inference.sources import davis_split_root, davis_videos, full_resolution_folder
from util.cli import ArgumentParser, existing_folder, run_cli
from util.distributed import cleanup
from util.metrics import evaluate_davis, format_tables

SPLITS = {"val": ("trainval", "val"), "testdev": ("test-dev", "test-dev")}
FULL_RESOLUTION_PROCESSING = 480  # shorter side at which full-resolution frames are segmented (the authors')


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis_path", type=existing_folder, default=Path("../DAVIS/2017"))
    parser.add_argument("--split", choices=tuple(SPLITS), default="val")
    parser.add_argument("--year", type=int, choices=(2016, 2017), default=2017)
    parser.add_argument("--resolution", choices=("480", "full"), default="480",
                        help="frames and annotations from 480p or Full-Resolution (1080p in DAVIS 2016); full "
                             "resolution is processed at a shorter side of 480 as the authors do (--size 0: as "
                             "stored) and the masks written at the stored size")
    parser.add_argument("--zip", action="store_true", help="also write submission.zip for the DAVIS server")
    parser.add_argument("--evaluate", action="store_true", help="compute J&F against the ground truth")
    add_inference_args(parser)
    args = parser.parse_args()
    if args.resolution == "full" and args.size is None:
        args.size = FULL_RESOLUTION_PROCESSING
    config = EvalConfig.from_args(args)
    root = davis_split_root(args.davis_path, SPLITS[args.split][0])
    resolution = "480p" if args.resolution == "480" else full_resolution_folder(root)
    videos = davis_videos(root, SPLITS[args.split][1], args.year, resolution)
    if config.options.size:
        print(f"frames processed at a shorter side of {config.options.size}, masks written at the stored size")
    summary = run_inference(config, videos, config.output)
    if summary is not None:  # rank 0
        if args.zip:
            write_zip(config.output, config.output / "submission.zip")
        if args.evaluate:
            numbers = evaluate_davis(root, config.output, SPLITS[args.split][1], args.year, resolution=resolution)
            print(format_tables(numbers, SPLITS[args.split][1]))
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
