"""Command-line configuration of the evaluation scripts: one object built from argparse."""
import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from inference.core import MemorySchedule
from inference.runner import RunOptions
from model.backbones import PretrainedWeightsError
from model.checkpoint import CheckpointError
from model.memory import SIMILARITIES
from util.distributed import pick_device
from util.fileio import InputError


def add_inference_args(parser: argparse.ArgumentParser, default_size: Optional[int] = None) -> None:
    """Flags shared by every evaluation script (names as in the original code where it had them)."""
    parser.add_argument("--model", required=True, type=Path, help="network weights (stcn.pth or ours)")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    parser.add_argument("--top", type=int, default=20, help="top-k memory readout; 0 = full softmax")
    parser.add_argument("--mem_every", type=int, default=5, help="add a frame to memory every N frames")
    parser.add_argument("--include_last", action="store_true", help="keep the previous frame as temporary memory")
    parser.add_argument("--max_mem_frames", type=int, default=None,
                        help="cap memory frames per object group (first frame kept); default unlimited")
    parser.add_argument("--similarity", choices=SIMILARITIES, default="l2", help="memory similarity (Table 1)")
    parser.add_argument("--size", type=int, default=default_size,
                        help="process at this shorter side (default: %(default)s; None = as stored)")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast on CUDA, bf16 on the CPU")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


@dataclass(frozen=True)
class EvalConfig:
    """What every evaluation script needs: weights, output, memory schedule and run options."""

    model: Path
    output: Path
    schedule: MemorySchedule
    options: RunOptions
    similarity: str = "l2"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EvalConfig":
        if args.mem_every < 1:
            raise InputError(f"--mem_every must be at least 1, got {args.mem_every}")
        schedule = MemorySchedule(args.mem_every, args.include_last, args.top, args.max_mem_frames)
        options = RunOptions(pick_device(args.device), args.amp, args.size, getattr(args, "overlay", False))
        return cls(args.model, args.output, schedule, options, args.similarity)


def run_cli(main: Callable[[], int]) -> None:
    """Run a script's main; bad input ends with one line naming the file and exit code 2."""
    try:
        sys.exit(main())
    except (InputError, CheckpointError, PretrainedWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
