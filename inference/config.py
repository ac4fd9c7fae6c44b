"""The evaluation scripts' flags and the one configuration object built from them."""
import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch

from inference.core import MemorySchedule
from model.memory import SIMILARITIES
from util.cli import at_least, check_flags, positive, weights_file
from util.distributed import pick_device
from util.fileio import check_output_folder


def add_schedule_args(parser: argparse.ArgumentParser) -> None:
    """The memory schedule's flags (every script that propagates masks: evaluation, benchmark, browser tool)."""
    parser.add_argument("--top", type=int, default=20, help="top-k memory readout; 0 = full softmax")
    parser.add_argument("--mem_every", type=int, default=5, help="add a frame to memory every N frames")
    parser.add_argument("--include_last", action="store_true", help="keep the previous frame as temporary memory")
    parser.add_argument("--max_mem_frames", type=int, default=None,
                        help="cap memory frames per object group (first frame kept); default unlimited")
    parser.add_argument("--kmn_sigma", type=float, default=None,
                        help="kernelized memory reading (KMN) with this Gaussian std at stride 16; the paper "
                             "uses it for 600p (KMN's own value: 7)")


def schedule_settings(args: argparse.Namespace) -> dict:
    """The schedule flags as `stcn.Segmenter.segment` keywords (checked as the evaluation scripts check them)."""
    check_flags(args, FLAG_RULES)
    return {"top_k": args.top, "mem_every": args.mem_every, "include_last": args.include_last,
            "max_mem_frames": args.max_mem_frames, "kmn_sigma": args.kmn_sigma}


def add_inference_args(parser: argparse.ArgumentParser, default_size: Optional[int] = None) -> None:
    """Flags shared by every evaluation script (names as in the original code where it had them)."""
    parser.add_argument("--model", required=True, type=weights_file, help="network weights (stcn.pth or ours)")
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    add_schedule_args(parser)
    parser.add_argument("--similarity", choices=SIMILARITIES, default=None,
                        help="memory similarity (Table 1); default: the one the weights were trained with "
                             "(their card <weights>.json), else the architecture's (l2 for STCN, dot for STM)")
    parser.add_argument("--flip", action="store_true", help="process horizontally flipped frames (test-time aug.)")
    parser.add_argument("--save_scores", action="store_true",
                        help="also write each output frame's probabilities (uint8) for scripts/merge_scores.py")
    parser.add_argument("--size", type=int, default=default_size,
                        help="process at this shorter side (default: %(default)s; None = as stored)")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast on CUDA, bf16 on the CPU")
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument("--local_decode", action="store_true",
                          help="decode each object only near where it can be instead of over the whole frame as "
                               "the paper does: faster at 480p, J&F may differ slightly (docs/speed.md)")
    decoding.add_argument("--exact_decode", action="store_true",
                          help="whole-frame decoding: now the default, kept so that older commands still run")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--rerun", action="store_true",
                        help="segment every video again; by default a rerun into the same --output skips the videos "
                             "an earlier run finished with the same settings (an interrupted evaluation continues)")


# Values that make no sense stop an evaluation script at once (exit 2).
FLAG_RULES = {
    "top": at_least(0), "mem_every": at_least(1), "max_mem_frames": at_least(1), "kmn_sigma": positive(),
    "size": (lambda size: size == 0 or size >= 16, "must be 0 (as stored) or at least 16"),
}


@dataclass(frozen=True)
class RunOptions:
    """How to run: device, mixed precision, processing size (shorter side; None = as stored), overlay
    video, horizontally flipped processing (test-time augmentation), object-local decoding, and whether a
    given mask holds every object at its frame (a user's correction) or only the objects it brings in."""

    device: torch.device = torch.device("cpu")
    amp: bool = False
    size: Optional[int] = None
    overlay: bool = False
    flip: bool = False
    local_decode: bool = False
    whole_masks: bool = False


@dataclass(frozen=True)
class EvalConfig:
    """What every evaluation script needs: weights, output, memory schedule and run options."""

    model: Path
    output: Path
    schedule: MemorySchedule
    options: RunOptions
    similarity: Optional[str] = None  # None: as recorded with the weights
    save_scores: bool = False
    rerun: bool = False  # segment every video again, even those an earlier run finished

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EvalConfig":
        check_flags(args, FLAG_RULES)
        check_output_folder(args.output)
        schedule = MemorySchedule(args.mem_every, args.include_last, args.top, args.max_mem_frames, args.kmn_sigma)
        options = RunOptions(pick_device(args.device), args.amp, args.size, getattr(args, "overlay", False),
                             args.flip, args.local_decode)
        return cls(args.model, args.output, schedule, options, args.similarity, args.save_scores, args.rerun)

    def settings(self) -> dict:
        """What decides a video's outputs (not the device): a finished video is reused only by a rerun with
        the same settings and the same weights file (path, size, modification time)."""
        weights = self.model.resolve()
        stat = weights.stat()
        options = {k: v for k, v in asdict(self.options).items() if k != "device"}
        return {"model": str(weights), "model_bytes": stat.st_size, "model_mtime_ns": stat.st_mtime_ns,
                "similarity": self.similarity, "schedule": asdict(self.schedule), **options,
                "save_scores": self.save_scores}
