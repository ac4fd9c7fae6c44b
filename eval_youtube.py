"""Evaluate STCN on YouTubeVOS (2018 or 2019, valid / test) and write the CodaLab submission.

Frames come from <yv_path>/all_frames/<split>_all_frames/JPEGImages, masks from <yv_path>/<split>/Annotations;
processing is at 480p shorter side, output at the original size with the original label ids, only the
frames meta.json asks for (all with --output_all). Writes <output>/Annotations/<video>/<frame>.png,
<output>/submission.zip and <output>/timing.json. Example:
  python eval_youtube.py --model saves/stcn.pth --yv_path ../YouTube --output output/yv19
"""
import argparse
from pathlib import Path

from inference.config import EvalConfig, add_inference_args
from inference.outputs import write_zip
from inference.runner import run_inference
from inference.sources import youtube_videos
from util.cli import ArgumentParser, existing_folder, run_cli
from util.distributed import cleanup


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yv_path", type=existing_folder, default=Path("../YouTube"))
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--output_all", action="store_true", help="write every frame, not only those asked for")
    add_inference_args(parser, default_size=480)
    args = parser.parse_args()
    config = EvalConfig.from_args(args)
    videos = youtube_videos(args.yv_path, args.split, args.output_all)
    annotations = config.output / "Annotations"
    if run_inference(config, videos, annotations, "Annotations") is not None:  # rank 0
        write_zip(annotations, config.output / "submission.zip", "Annotations")
        print(f"submission: {config.output / 'submission.zip'}")
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
