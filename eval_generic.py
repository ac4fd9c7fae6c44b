"""Run STCN on your own videos: a folder in the DAVIS or YouTubeVOS layout, or a video file with the
mask of its first frame. Writes <output>/<video>/<frame>.png and, with --overlay, <output>/<video>_overlay.mp4.
Examples:
  python eval_generic.py --model saves/stcn.pth --data_path my_videos --output output/mine --overlay
  python eval_generic.py --model saves/stcn.pth --video clip.mp4 --mask first.png --output output/clip
"""
import argparse

from inference.config import EvalConfig, add_inference_args
from inference.runner import run_inference
from inference.sources import folder_videos, video_file
from util.cli import ArgumentParser, existing_file, existing_folder, run_cli
from util.distributed import cleanup


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data_path", type=existing_folder, help="folder with JPEGImages/ and Annotations/")
    source.add_argument("--video", type=existing_file, help="a video file readable by OpenCV")
    parser.add_argument("--mask", type=existing_file, help="first-frame mask of --video (indexed or 8-bit label PNG)")
    parser.add_argument("--overlay", action="store_true", help="also write an overlay video per input video")
    add_inference_args(parser)
    args = parser.parse_args()
    if args.video is not None and args.mask is None:
        parser.error("--video needs --mask (the first frame's mask)")
    config = EvalConfig.from_args(args)
    videos = folder_videos(args.data_path) if args.data_path else [video_file(args.video, args.mask)]
    run_inference(config, videos, config.output)
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
