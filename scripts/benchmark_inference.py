"""Inference speed and memory of the propagation core against video length, object count and the way of
segmenting (STCN against its STM baseline: the re-timing of supplementary section D; local against exact
decoding; fp32 against mixed precision).

Each object count runs in its own process on a synthetic video streamed frame by frame, as long as the
longest length asked for; a shorter video is its prefix, so its row is read off at that frame (the peak
memory is the process's running maximum at that point). Several ways of segmenting process the same
frames in the same process, interleaved frame by frame, so that a load on the machine hits them alike.
Prints: frames/s, time per frame at frame 20 and at the end, peak memory (RSS, of the process, so of all
ways of that object count; CUDA max-allocated on a GPU), memory bank size (per way), and achieved GFLOP/s
of a whole frame against the fp32 matmul rate measured in the same process.

`--compare A B ...` names the ways, each a variant joined with +: stcn or stm (the architecture, default
the first --arch), exact (every object decoded over the whole frame, --exact_decode), local (decoded near
where it can be, the default; local=N with a margin of N cells), amp, compile (torch.compile of the two
encoders). It prints each one's FPS over the first one's and the share of pixels whose label equals the
first one's. `--arch A B` and `--amp` are shorthands (variants A, B, A+amp, ...) that print the FPS ratios
beside the paper's. `--weights` times trained weights instead of random ones; `--object_scales` repeats
everything with objects scaled in size.
Examples: python scripts/benchmark_inference.py --lengths 50 100 200 --objects 1 3 --arch stcn stm
          python scripts/benchmark_inference.py --lengths 100 --objects 3 --compare exact local
"""
import argparse
import copy
import json
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dataset.synthetic import generate_video
from inference import local_decode
from inference.core import InferenceCore, MemorySchedule
from model.checkpoint import ARCHS, NetworkSpec, load_network
from model.fold import fold_batchnorm
from util.distributed import autocast, peak_memory_bytes, pick_device, synchronise
from util.preprocess import normalise

WINDOW = 5  # frames averaged for the per-frame times


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Achieved fp32 GFLOP/s of a square matmul: the machine's practical peak for this comparison."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    synchronise(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronise(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def streamed_frames(length: int, objects: int, size: tuple[int, int], object_scale: float = 1.0):
    """A 20-frame synthetic clip played forwards and backwards: frames come one at a time, as from disk,
    with the share of the frame each object covers."""
    clip = generate_video(np.random.default_rng(0), 20, size, objects, min_objects=objects, object_scale=object_scale)
    first = clip.labels[0]
    for t in range(length):
        cycle = t % 38
        index = cycle if cycle < 20 else 38 - cycle
        yield clip.frames[index], (first if t == 0 else None), float((clip.labels[index] > 0).mean()) / objects


def bank_bytes(core: InferenceCore) -> int:
    keys, values = core.groups[0].bank.memory()
    return keys.numel() * keys.element_size() + values.numel() * values.element_size()


def build_network(arch: str, similarity: str, device: torch.device, channels_last: bool,
                  weights: Optional[Path] = None):
    """The given weights prepared as the runner does, or random weights (seeded) of the architecture,
    folded for inference (channels-last if asked)."""
    if weights is not None:
        return load_network(weights, device, similarity)
    torch.manual_seed(0)
    network = fold_batchnorm(NetworkSpec(arch, similarity or ARCHS[arch].default_similarity).build().eval())
    network = network.to(device)
    return network.to(memory_format=torch.channels_last) if channels_last else network


def parse_variant(name: str, arch: str = "stcn", exact_decode: bool = False) -> dict:
    """A variant's settings, {'arch', 'exact_decode', 'margin', 'amp', 'compile'}: its parts joined by +
    (an architecture, exact, local, local=N, amp, compile); `arch` and `exact_decode` where it names none."""
    settings = {"arch": arch, "exact_decode": exact_decode, "margin": local_decode.MARGIN, "amp": False,
                "compile": False}
    for part in name.split("+"):
        key, _, value = part.partition("=")
        if key in ARCHS and not value:
            settings["arch"] = key
        elif key == "exact" and not value:
            settings["exact_decode"] = True
        elif key == "local" and (not value or value.isdigit()):
            settings["exact_decode"], settings["margin"] = False, int(value) if value else local_decode.MARGIN
        elif key in ("amp", "compile") and not value:
            settings[key] = True
        else:
            raise ValueError(f"unknown variant {part!r}: expected {', '.join(ARCHS)}, exact, local, local=N, amp or "
                             "compile, joined by +")
    return settings


def variant_names(args: argparse.Namespace) -> list[str]:
    """The ways of segmenting to time: --compare's, or each --arch (and each with mixed precision, --amp)."""
    if args.compare:
        return args.compare
    return [f"{arch}+amp" if amp else arch for arch in args.arch for amp in ((False, True) if args.amp else (False,))]


def compiled(network: torch.nn.Module) -> torch.nn.Module:
    """A copy whose two encoders run through torch.compile (the decoder is called through its frame-term
    methods, and its boxes vary in size)."""
    network = copy.deepcopy(network)
    for name in ("key_encoder", "value_encoder"):
        setattr(network, name, torch.compile(getattr(network, name)))
    return network


class _Timed:
    """One way of segmenting (a core, under mixed precision with `amp`) and its per-frame times."""

    def __init__(self, label: str, core: InferenceCore, amp: bool = False) -> None:
        self.label, self.core, self.amp = label, core, amp
        self.times: list[float] = []
        self.flops, self.at_20 = 0.0, None
        self.equal_pixels, self.pixels = 0, 0  # labels equal to the first run's


def build_runs(args: argparse.Namespace, device: torch.device, schedule: MemorySchedule) -> list[_Timed]:
    """One core per variant; variants of the same architecture share its network (the same weights)."""
    networks, runs = {}, []
    for name in variant_names(args):
        settings = parse_variant(name, args.arch[0], args.exact_decode)
        if settings["arch"] not in networks:
            networks[settings["arch"]] = build_network(settings["arch"], args.similarity, device, args.channels_last,
                                                       args.weights)
        network = networks[settings["arch"]]
        core = InferenceCore(compiled(network) if settings["compile"] else network, schedule,
                             settings["exact_decode"], settings["margin"])
        runs.append(_Timed(name, core, settings["amp"]))
    return runs


def run_one(args: argparse.Namespace) -> list[dict]:
    """Segment one synthetic video of max(lengths) frames in every way asked for, interleaved frame by
    frame; one row per way and length, read off at that frame."""
    device = pick_device(args.device)
    schedule = MemorySchedule(args.mem_every, args.include_last, args.top)
    runs = build_runs(args, device, schedule)
    rate = matmul_gflops(device)
    length = max(args.lengths)
    rows, coverage = [], []
    for t, (frame, mask, covered) in enumerate(streamed_frames(length, args.objects, tuple(args.size),
                                                               args.object_scale)):
        image = normalise(frame).to(device)
        coverage.append(covered)
        labels = {}
        for run in runs if t % 2 == 0 else runs[::-1]:  # alternate who goes first
            counter = FlopCounterMode(display=False) if t == 20 else None
            synchronise(device)
            start = time.perf_counter()
            with counter if counter is not None else nullcontext(), autocast(device, run.amp):
                prob = run.core.step(image, mask, is_last=t == length - 1)
            synchronise(device)
            run.times.append(time.perf_counter() - start)
            labels[run.label] = prob.argmax(dim=0)
            if counter is not None:
                run.flops = counter.get_total_flops()
            if t == 21 + WINDOW:
                run.at_20 = float(np.mean(run.times[21:21 + WINDOW]))  # frame 20 ran under the FLOP counter
        for run in runs:
            run.equal_pixels += int((labels[run.label] == labels[runs[0].label]).sum())
            run.pixels += labels[run.label].numel()
        if t + 1 in args.lengths:
            for run in runs:
                rows.append({
                    "arch": run.label, "objects": args.objects, "length": t + 1, "fps": t / sum(run.times[1:]),
                    "s_at_20": run.at_20, "s_at_end": float(np.mean(run.times[-WINDOW:])),
                    "peak_mb": peak_memory_bytes(device) / 2**20, "bank_mb": bank_bytes(run.core) / 2**20,
                    "frame_gflop": run.flops / 1e9, "achieved_gflops": run.flops / 1e9 / run.at_20,
                    "matmul_gflops": rate, "object_scale": args.object_scale,
                    "object_coverage": float(np.mean(coverage)), "agreement": run.equal_pixels / run.pixels,
                    "whole_frame_decodes": run.core.whole_frame_decodes,
                })
    return rows


PAPER_FPS = {"stcn": 20.2, "stm": 10.2}  # multi-object FPS on the authors' GPU (supplementary D)


def print_ratios(rows: list[dict]) -> None:
    """FPS of the first network over each other, per object count and length, beside the paper's."""
    archs = list(dict.fromkeys(row["arch"] for row in rows))
    fps = {(row["arch"], row["objects"], row["length"]): row["fps"] for row in rows}
    for other in archs[1:]:
        paper = ""
        if {archs[0], other} <= set(PAPER_FPS):
            paper = f" (paper: {PAPER_FPS[archs[0]]}/{PAPER_FPS[other]} = {PAPER_FPS[archs[0]] / PAPER_FPS[other]:.2f})"
        print(f"\nFPS {archs[0].upper()} / {other.upper()}, same frames, interleaved{paper}")
        print(f"{'objects':>7} {'frames':>6} {'ratio':>6}")
        for (arch, objects, length), value in fps.items():
            if arch == archs[0]:
                print(f"{objects:>7} {length:>6} {value / fps[(other, objects, length)]:>6.2f}")


def print_comparison(rows: list[dict]) -> None:
    """Each variant's FPS over the first one's and its labels' agreement with the first one's."""
    first = rows[0]["arch"]
    fps = {(row["arch"], row["object_scale"], row["objects"], row["length"]): row["fps"] for row in rows}
    print(f"\nFPS of each variant / {first}, same frames, interleaved; pixels labelled as by {first}")
    print(f"{'variant':>16} {'scale':>5} {'covered':>7} {'objects':>7} {'frames':>6} {'speed-up':>8} {'equal px':>9} "
          f"{'whole-frame decodes':>19}")
    for row in rows:
        key = (row["object_scale"], row["objects"], row["length"])
        print(f"{row['arch']:>16} {row['object_scale']:>5.2f} {row['object_coverage']:>7.1%} {row['objects']:>7} "
              f"{row['length']:>6} {row['fps'] / fps[(first, *key)]:>7.2f}x {row['agreement']:>9.4%} "
              f"{row['whole_frame_decodes']:>19}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--arch", nargs="+", choices=tuple(ARCHS), default=["stcn"],
                        help="architectures, timed side by side (e.g. --arch stcn stm for supplementary D)")
    parser.add_argument("--similarity", choices=("l2", "dot"), default=None,
                        help="for every architecture (default: each one's own: l2 for STCN, dot for STM)")
    parser.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"))
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--mem_every", type=int, default=5)
    parser.add_argument("--include_last", action="store_true")
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--exact_decode", action="store_true", help="decode whole frames (eval flag of the same name)")
    parser.add_argument("--compare", nargs="+", metavar="VARIANT",
                        help="time these ways of segmenting side by side: exact, local, local=N, amp, compile, "
                             "an architecture (join with +; default architecture: the first --arch)")
    parser.add_argument("--weights", type=Path, help="trained weights to time (default: random weights)")
    parser.add_argument("--object_scales", type=float, nargs="+", default=[1.0],
                        help="scale the synthetic objects' sizes (one table block per scale)")
    parser.add_argument("--object_scale", type=float, default=1.0, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--amp", action="store_true",
                        help="also time every architecture under mixed precision (fp16 on CUDA, bf16 on the CPU), "
                             "interleaved with fp32 (rows <arch>+amp)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one object count
    args = parser.parse_args()
    if min(args.lengths) <= 21 + WINDOW:
        parser.error(f"lengths must be above {21 + WINDOW} frames (the time per frame is compared with frame 20)")
    try:
        [parse_variant(name) for name in args.compare or []]
    except ValueError as error:
        parser.error(str(error))
    if args.weights is not None and not args.weights.is_file():
        parser.error(f"--weights {args.weights}: no such file")
    if args.child:
        args.objects = args.objects[0]
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    if len(set(args.arch)) != len(args.arch):
        parser.error("--arch lists an architecture twice")
    print(f"{'arch':>10} {'objects':>7} {'frames':>6} {'FPS':>6} {'s/frame@20':>10} {'s/frame@end':>11} {'end/20':>6} "
          f"{'peak MB':>8} {'bank MB':>8} {'GFLOP/frame':>11} {'GFLOP/s':>8} {'matmul GFLOP/s':>14} {'ratio':>6}")
    for scale, objects in ((s, o) for s in args.object_scales for o in args.objects):
        child = [sys.executable, __file__, "--child", "--lengths", *map(str, args.lengths), "--objects",
                 str(objects), "--size", *map(str, args.size), "--top", str(args.top), "--mem_every",
                 str(args.mem_every), "--device", args.device, "--arch", *args.arch, "--object_scale", str(scale)] \
            + (["--include_last"] if args.include_last else []) \
            + (["--channels_last"] if args.channels_last else []) \
            + (["--amp"] if args.amp else []) \
            + (["--exact_decode"] if args.exact_decode else []) \
            + (["--compare", *args.compare] if args.compare else []) \
            + (["--weights", str(args.weights)] if args.weights else []) \
            + (["--similarity", args.similarity] if args.similarity else [])
        for row in json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout):
            rows.append(row)
            print(f"{row['arch']:>10} {objects:>7} {row['length']:>6} {row['fps']:>6.2f} {row['s_at_20']:>10.3f} "
                  f"{row['s_at_end']:>11.3f} {row['s_at_end'] / row['s_at_20']:>6.2f} {row['peak_mb']:>8.0f} "
                  f"{row['bank_mb']:>8.1f} {row['frame_gflop']:>11.1f} {row['achieved_gflops']:>8.1f} "
                  f"{row['matmul_gflops']:>14.1f} {row['achieved_gflops'] / row['matmul_gflops']:>6.2f}", flush=True)
    if args.compare:
        print_comparison(rows)
    elif len(args.arch) > 1 or args.amp:
        print_ratios(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
