"""Inference speed and memory of the propagation core against video length, object count and the way of
segmenting (STCN against its STM baseline: the re-timing of supplementary section D; local against exact
decoding; fp32 against mixed precision).

Each object count runs in its own process on a clip played forwards and backwards and streamed frame by
frame, as long as the longest length asked for; a shorter video is its prefix, so its row is read off at
that frame (the peak memory is the process's running maximum at that point). The clip is a 20-frame
synthetic one, or with `--video` a folder of frames in the DAVIS layout with its masks
(JPEGImages/.../<v> and Annotations/.../<v>, every frame annotated, e.g. a set of scripts/make_synthetic.py).
Several ways of segmenting process the same frames in the same process, interleaved frame by frame, so
that a load on the machine hits them alike.

Prints: frames/s, time per frame at frame 20 and at the end, peak memory (RSS, of the process, so of all
ways of that object count; CUDA max-allocated on a GPU), memory bank size (per way), achieved GFLOP/s of
a whole frame against the fp32 matmul rate measured in the same process, and how well each way segmented
what it timed: J&F against the clip's masks (frames after the first) and whether it tracks (every object
found, J above 0.5, in 80% of the frames that show it; util/metrics.py). A speed-up is claimed only where
both sides track: random weights (the default) track nothing, so time trained ones (`--model`).

`--compare A B ...` names the ways, each a variant joined with +: stcn or stm (the architecture, default
the first --arch), exact (every object decoded over the whole frame, the default), local (decoded near
where it can be, --local_decode; local=N with a margin of N cells), amp, compile (torch.compile of the two
encoders). It prints each one's FPS over the first one's and the share of pixels whose label equals the
first one's. `--arch A B` and `--amp` are shorthands (variants A, B, A+amp, ...) that print the FPS ratios
beside the paper's. `--model` times trained weights instead of random ones (`stm=PATH` for one
architecture's; `--weights` is its old name); `--object_scales` repeats everything with the synthetic
objects scaled in size.
Examples: python scripts/benchmark_inference.py --lengths 50 100 200 --objects 1 3 --model saves/stcn.pth
          python scripts/benchmark_inference.py --lengths 100 --video $D/JPEGImages/480p/0000 --arch stcn stm \
              --model stcn=$W1 stm=$W2
"""
import argparse
from pathlib import Path

from experiments import inference_speed
from inference.config import add_schedule_args
from model.checkpoint import ARCHS
from util.cli import ArgumentParser, Renamed, existing_folder, output_file, run_cli


def benchmark_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--arch", nargs="+", choices=tuple(ARCHS), default=["stcn"],
                        help="architectures, timed side by side (e.g. --arch stcn stm for supplementary D)")
    parser.add_argument("--similarity", choices=("l2", "dot"), default=None,
                        help="for every architecture (default: each one's own: l2 for STCN, dot for STM)")
    parser.add_argument("--frame_size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"),
                        help="the synthetic clip's frame size (default 480 854)")
    parser.add_argument("--size", type=int, nargs=2, dest="frame_size", action=Renamed, new_name="--frame_size",
                        help=argparse.SUPPRESS)
    add_schedule_args(parser)
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--local_decode", action="store_true",
                        help="decode near where objects can be (eval flag of the same name); default whole frames")
    parser.add_argument("--compare", nargs="+", metavar="VARIANT",
                        help="time these ways of segmenting side by side: exact, local, local=N, amp, compile, "
                             "an architecture (join with +; default architecture: the first --arch)")
    parser.add_argument("--model", nargs="+", metavar="[ARCH=]PATH",
                        help="trained weights to time, for every architecture or ARCH=PATH for one (default: random "
                             "weights, which track nothing)")
    parser.add_argument("--weights", nargs="+", dest="model", action=Renamed, new_name="--model",
                        help=argparse.SUPPRESS)
    parser.add_argument("--video", type=existing_folder,
                        help="time this DAVIS-layout video (.../JPEGImages/<res>/<name>, masks in the matching "
                             "Annotations folder) instead of the synthetic clip; --objects, --size, --object_scales "
                             "do not apply")
    parser.add_argument("--object_scales", type=float, nargs="+", default=[1.0],
                        help="scale the synthetic objects' sizes (one table block per scale)")
    parser.add_argument("--object_scale", type=float, default=1.0, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--amp", action="store_true",
                        help="also time every architecture under mixed precision (fp16 on CUDA, bf16 on the CPU), "
                             "interleaved with fp32 (rows <arch>+amp)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=output_file, help="also write the rows as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one object count
    return parser


def main() -> int:
    return inference_speed.run(benchmark_parser().parse_args(), Path(__file__).resolve())


if __name__ == "__main__":
    run_cli(main)
