"""Evaluate STCN on YouTubeVOS (2018 or 2019, valid / test) and write the CodaLab submission.

Frames come from <yv_path>/all_frames/<split>_all_frames/JPEGImages, masks from <yv_path>/<split>/Annotations;
processing is at 480p shorter side, output at the original size with the original label ids, only the
frames meta.json asks for (all with --output_all). Writes <output>/Annotations/<video>/<frame>.png,
<output>/submission.zip and <output>/timing.json. Example:
  python eval_youtube.py --model saves/stcn.pth --yv_path ../YouTube --output output/yv19
"""
import argparse
from pathlib import Path

from inference.runner import load_network, prepare_scores, run_videos, summarise, write_zip
from inference.sources import youtube_videos
from util.config import EvalConfig, add_inference_args, run_cli
from util.distributed import barrier, cleanup, init_distributed, rank_and_world


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yv_path", type=Path, default=Path("../YouTube"))
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--output_all", action="store_true", help="write every frame, not only those asked for")
    add_inference_args(parser, default_size=480)
    args = parser.parse_args()
    config = EvalConfig.from_args(args)
    videos = youtube_videos(args.yv_path, args.split, args.output_all)
    network = load_network(config.model, config.options.device, config.similarity)
    init_distributed(config.options.device)
    annotations = config.output / "Annotations"
    scores = prepare_scores(config.output, "Annotations") if args.save_scores else None
    timings = run_videos(network, videos, config.schedule, annotations, config.options, scores)
    barrier()
    if rank_and_world()[0] == 0:
        summary = summarise(timings, config.output / "timing.json")
        write_zip(annotations, config.output / "submission.zip", "Annotations")
        print(f"{summary['frames']} frames in {summary['seconds']:.1f} s: {summary['fps']:.2f} FPS "
              f"(multi-object, IO excluded); submission: {config.output / 'submission.zip'}")
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
