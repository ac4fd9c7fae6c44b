"""What every evaluation script does once it knows its videos: load, segment (split across torchrun
processes), gather the timings and report."""
from pathlib import Path
from typing import Optional

from inference.runner import load_network, prepare_scores, run_videos, summarise
from inference.sources import Video
from model.checkpoint import describe
from util.config import EvalConfig
from util.distributed import barrier, init_distributed, rank_and_world


def run_evaluation(config: EvalConfig, videos: list[Video], mask_dir: Path, annotation_dir: str = "") -> Optional[dict]:
    """Segment `videos` into `mask_dir` (`annotation_dir` is its path under the output, for merging
    saved scores); on rank 0 write timing.json, print the speed and return the summary (None elsewhere)."""
    network = load_network(config.model, config.options.device, config.similarity)
    if rank_and_world()[0] == 0:
        print(f"{config.model}: {describe(network)}", flush=True)
    init_distributed(config.options.device)
    scores = prepare_scores(config.output, annotation_dir) if config.save_scores else None
    timings = run_videos(network, videos, config.schedule, mask_dir, config.options, scores)
    barrier()
    if rank_and_world()[0] != 0:
        return None
    summary = summarise(timings, config.output / "timing.json")
    print(f"{summary['frames']} frames of {summary['videos']} videos in {summary['seconds']:.1f} s: "
          f"{summary['fps']:.2f} FPS (multi-object, IO excluded); masks in {mask_dir}")
    return summary
