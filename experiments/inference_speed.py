"""Inference speed and memory of the propagation core against video length, object count and the way of
segmenting (scripts/benchmark_inference.py): clips streamed frame by frame, ways of segmenting timed side by
side in one process, rows and comparison tables."""
import argparse
import copy
import json
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dataset.synthetic import generate_video
from inference import local_decode
from inference.config import FLAG_RULES
from inference.core import InferenceCore, MemorySchedule
from inference.outputs import labels_of
from model.checkpoint import ARCHS, NetworkSpec, load_network, similarity_for
from model.fold import fold_batchnorm
from util.cli import check_flags
from util.distributed import autocast, peak_memory_bytes, pick_device
from util.fileio import InputError
from util.imageio import list_images, read_image, read_mask
from util.metrics import VideoScore
from util.preprocess import normalise
from util.timing import Stopwatch

WINDOW = 5  # frames averaged for the per-frame times


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Achieved fp32 GFLOP/s of a square matmul: the machine's practical peak for this comparison."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    watch = Stopwatch(device)
    for _ in range(repeats):
        a @ b
    return 2 * size ** 3 * repeats / watch.lap() / 1e9


@dataclass
class Clip:
    """`length` frames with their ground truth: `frame(i)` (H, W, 3) uint8 RGB, `labels(i)` (H, W), and
    the number of objects (the largest label of frame 0)."""

    length: int
    frame: Callable[[int], np.ndarray]
    labels: Callable[[int], np.ndarray]
    num_objects: int


def synthetic_clip(objects: int, size: tuple[int, int], object_scale: float = 1.0) -> Clip:
    """A 20-frame synthetic clip (seed 0) with exactly `objects` objects."""
    video = generate_video(np.random.default_rng(0), 20, size, objects, min_objects=objects, object_scale=object_scale)
    return Clip(len(video.frames), video.frames.__getitem__, video.labels.__getitem__, int(video.labels[0].max()))


def folder_clip(frames_dir: Path) -> Clip:
    """A DAVIS-layout video: its frames, read when needed, and the masks of the matching Annotations folder
    (every frame needs one; void counts as background)."""
    frames = list_images(frames_dir)
    if "JPEGImages" not in frames_dir.parts:
        raise InputError(f"{frames_dir}: not a DAVIS-layout frame folder (.../JPEGImages/.../<video>)")
    parts = list(frames_dir.parts)
    parts[len(parts) - 1 - parts[::-1].index("JPEGImages")] = "Annotations"
    masks = [Path(*parts) / f"{frame.stem}.png" for frame in frames]
    missing = [mask for mask in masks if not mask.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no mask for frame {frames[masks.index(missing[0])].name} (the benchmark "
                         f"scores every frame, so every frame needs one; {len(missing)} missing)")
    return Clip(len(frames), lambda i: read_image(frames[i]), lambda i: read_mask(masks[i]),
                int(read_mask(masks[0]).max()))


def streamed_frames(clip: Clip, length: int) -> Iterator[tuple[np.ndarray, Optional[np.ndarray], np.ndarray, float]]:
    """The clip played forwards and backwards for `length` frames, one at a time as from disk: (frame, the
    first mask on frame 0 only, ground truth, the share of the frame each object covers)."""
    period = max(1, 2 * clip.length - 2)
    for t in range(length):
        cycle = t % period
        index = cycle if cycle < clip.length else period - cycle
        labels = clip.labels(index)
        covered = float((labels > 0).mean()) / max(1, clip.num_objects)
        yield clip.frame(index), (labels if t == 0 else None), labels, covered


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
    network = fold_batchnorm(NetworkSpec(arch, similarity_for(arch, similarity)).build().eval())
    network = network.to(device)
    return network.to(memory_format=torch.channels_last) if channels_last else network


def parse_variant(name: str, arch: str = "stcn", local: bool = False) -> dict:
    """A variant's settings, {'arch', 'local_decode', 'margin', 'amp', 'compile'}: its parts joined by +
    (an architecture, exact, local, local=N, amp, compile); `arch` and `local` where it names none."""
    settings = {"arch": arch, "local_decode": local, "margin": local_decode.MARGIN, "amp": False, "compile": False}
    for part in name.split("+"):
        key, _, value = part.partition("=")
        if key in ARCHS and not value:
            settings["arch"] = key
        elif key == "exact" and not value:
            settings["local_decode"] = False
        elif key == "local" and (not value or value.isdigit()):
            settings["local_decode"], settings["margin"] = True, int(value) if value else local_decode.MARGIN
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


def parse_weights(items: Optional[list[str]], archs: list[str]) -> dict[str, Path]:
    """--model: PATH for every architecture, or ARCH=PATH for one; {architecture: path}."""
    weights = {}
    for item in items or []:
        arch, separator, path = item.partition("=")
        if separator and arch in ARCHS:
            weights[arch] = Path(path)
        elif separator:
            raise ValueError(f"--model {item}: {arch!r} is not an architecture ({', '.join(ARCHS)})")
        else:
            weights.update({name: Path(item) for name in archs})
    for arch, path in weights.items():
        if not path.is_file():
            raise ValueError(f"--model {path}: no such file")
    return weights


class _Timed:
    """One way of segmenting (a core, under mixed precision with `amp`), its per-frame times and its score."""

    def __init__(self, label: str, core: InferenceCore, num_objects: int, amp: bool = False) -> None:
        self.label, self.core, self.amp = label, core, amp
        self.times: list[float] = []
        self.flops, self.at_20 = 0.0, None
        self.equal_pixels, self.pixels = 0, 0  # labels equal to the first run's
        self.score = VideoScore(num_objects)


def build_runs(args: argparse.Namespace, device: torch.device, schedule: MemorySchedule,
               num_objects: int) -> list[_Timed]:
    """One core per variant; variants of the same architecture share its network (the same weights)."""
    networks, runs = {}, []
    weights = parse_weights(args.model, args.arch)
    for name in variant_names(args):
        settings = parse_variant(name, args.arch[0], args.local_decode)
        arch = settings["arch"]
        if arch not in networks:
            networks[arch] = build_network(arch, args.similarity, device, args.channels_last, weights.get(arch))
            if networks[arch].arch != arch:
                raise ValueError(f"--model {weights[arch]}: {networks[arch].arch} weights, not {arch}")
        network = networks[arch]
        core = InferenceCore(compiled(network) if settings["compile"] else network, schedule,
                             settings["local_decode"], settings["margin"])
        runs.append(_Timed(name, core, num_objects, settings["amp"]))
    return runs


def run_one(args: argparse.Namespace) -> list[dict]:
    """Segment one synthetic video of max(lengths) frames in every way asked for, interleaved frame by
    frame; one row per way and length, read off at that frame."""
    device = pick_device(args.device)
    schedule = MemorySchedule(args.mem_every, args.include_last, args.top, args.max_mem_frames, args.kmn_sigma)
    clip = (folder_clip(args.video) if args.video else
            synthetic_clip(args.objects, tuple(args.frame_size), args.object_scale))
    runs = build_runs(args, device, schedule, clip.num_objects)
    rate = matmul_gflops(device)
    length = max(args.lengths)
    rows, coverage = [], []
    for t, (frame, mask, truth, covered) in enumerate(streamed_frames(clip, length)):
        image = normalise(frame).to(device)
        coverage.append(covered)
        labels = {}
        for run in runs if t % 2 == 0 else runs[::-1]:  # alternate who goes first
            counter = FlopCounterMode(display=False) if t == 20 else None
            watch = Stopwatch(device)
            with counter if counter is not None else nullcontext(), autocast(device, run.amp):
                prob = run.core.step(image, mask, is_last=t == length - 1)
            run.times.append(watch.lap())
            labels[run.label] = labels_of(prob, run.core.object_ids)
            if counter is not None:
                run.flops = counter.get_total_flops()
            if t == 21 + WINDOW:
                run.at_20 = float(np.mean(run.times[21:21 + WINDOW]))  # frame 20 ran under the FLOP counter
        for run in runs:
            run.equal_pixels += int((labels[run.label] == labels[runs[0].label]).sum())
            run.pixels += labels[run.label].size
            if t > 0:  # the first frame is given
                run.score.add(truth, labels[run.label])
        if t + 1 in args.lengths:
            for run in runs:
                rows.append({
                    "arch": run.label, "objects": clip.num_objects, "length": t + 1, "fps": t / sum(run.times[1:]),
                    "s_at_20": run.at_20, "s_at_end": float(np.mean(run.times[-WINDOW:])),
                    "peak_mb": peak_memory_bytes(device) / 2**20, "bank_mb": bank_bytes(run.core) / 2**20,
                    "frame_gflop": run.flops / 1e9, "achieved_gflops": run.flops / 1e9 / run.at_20,
                    "matmul_gflops": rate, "object_scale": args.object_scale,
                    "object_coverage": float(np.mean(coverage)), "agreement": run.equal_pixels / run.pixels,
                    "whole_frame_decodes": run.core.local.whole_frame_decodes if run.core.local else None,
                    "jf": run.score.jf(),
                    "found": min(run.score.found_shares()), "tracks": run.score.tracks(),
                })
    return rows


PAPER_FPS = {"stcn": 20.2, "stm": 10.2}  # multi-object FPS on the authors' GPU (supplementary D)


NO_CLAIM = "no claim: an object was lost"


def speed_up(row: dict, baseline: dict) -> str:
    """FPS of `row` over `baseline`'s, claimed only when both tracked every object."""
    return f"{row['fps'] / baseline['fps']:.2f}x" if row["tracks"] and baseline["tracks"] else NO_CLAIM


def print_ratios(rows: list[dict]) -> None:
    """FPS of the first network over each other, per object count and length, beside the paper's."""
    archs = list(dict.fromkeys(row["arch"] for row in rows))
    by_key = {(row["arch"], row["objects"], row["length"]): row for row in rows}
    for other in archs[1:]:
        paper = ""
        if {archs[0], other} <= set(PAPER_FPS):
            paper = f" (paper: {PAPER_FPS[archs[0]]}/{PAPER_FPS[other]} = {PAPER_FPS[archs[0]] / PAPER_FPS[other]:.2f})"
        print(f"\nFPS {archs[0].upper()} / {other.upper()}, same frames, interleaved{paper}")
        print(f"{'objects':>7} {'frames':>6} {'J&F':>11} {'ratio':>6}")
        for (arch, objects, length), row in by_key.items():
            if arch == archs[0]:
                baseline = by_key[(other, objects, length)]
                print(f"{objects:>7} {length:>6} {row['jf']:>5.3f}/{baseline['jf']:<5.3f} {speed_up(row, baseline)}")


def print_comparison(rows: list[dict]) -> None:
    """Each variant's FPS over the first one's and its labels' agreement with the first one's."""
    first = rows[0]["arch"]
    by_key = {(row["arch"], row["object_scale"], row["objects"], row["length"]): row for row in rows}
    print(f"\nFPS of each variant / {first}, same frames, interleaved; pixels labelled as by {first}")
    print(f"{'variant':>16} {'scale':>5} {'covered':>7} {'objects':>7} {'frames':>6} {'J&F':>6} {'equal px':>9} "
          f"{'whole-frame decodes':>19} speed-up")
    for row in rows:
        key = (row["object_scale"], row["objects"], row["length"])
        whole = "-" if row["whole_frame_decodes"] is None else row["whole_frame_decodes"]  # exact: every one
        print(f"{row['arch']:>16} {row['object_scale']:>5.2f} {row['object_coverage']:>7.1%} {row['objects']:>7} "
              f"{row['length']:>6} {row['jf']:>6.3f} {row['agreement']:>9.4%} {whole:>19} "
              f"{speed_up(row, by_key[(first, *key)])}")


def check_args(args: argparse.Namespace) -> None:
    """InputError for flags that cannot make a benchmark, before any is run."""
    check_flags(args, FLAG_RULES)
    if min(args.lengths) <= 21 + WINDOW:
        raise InputError(f"lengths must be above {21 + WINDOW} frames (the time per frame is compared with frame 20)")
    if len(set(args.arch)) != len(args.arch):
        raise InputError("--arch lists an architecture twice")
    try:
        [parse_variant(name) for name in args.compare or []]
        parse_weights(args.model, args.arch)
    except ValueError as error:
        raise InputError(str(error)) from None
    if args.video:
        folder_clip(args.video)


def print_row(row: dict) -> None:
    print(f"{row['arch']:>10} {row['objects']:>7} {row['length']:>6} {row['fps']:>6.2f} "
          f"{row['s_at_20']:>10.3f} {row['s_at_end']:>11.3f} {row['s_at_end'] / row['s_at_20']:>6.2f} "
          f"{row['peak_mb']:>8.0f} {row['bank_mb']:>8.1f} {row['frame_gflop']:>11.1f} "
          f"{row['achieved_gflops']:>8.1f} {row['matmul_gflops']:>14.1f} {row['achieved_gflops'] / row['matmul_gflops']:>6.2f} "
          f"{row['jf']:>6.3f} {'yes' if row['tracks'] else 'no':>6}", flush=True)


def run(args: argparse.Namespace, script: Path) -> int:
    """The benchmark the flags ask for: one child process of `script` per object count and scale (its peak
    memory its own), or with `args.child` this process's block; prints the tables. Returns the exit status."""
    check_args(args)
    if args.child:
        args.objects = args.objects[0]
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    print(f"{'arch':>10} {'objects':>7} {'frames':>6} {'FPS':>6} {'s/frame@20':>10} {'s/frame@end':>11} {'end/20':>6} "
          f"{'peak MB':>8} {'bank MB':>8} {'GFLOP/frame':>11} {'GFLOP/s':>8} {'matmul GFLOP/s':>14} {'ratio':>6} "
          f"{'J&F':>6} {'tracks':>6}")
    blocks = [(1.0, 0)] if args.video else [(s, o) for s in args.object_scales for o in args.objects]
    for scale, objects in blocks:  # the child parses the same flags, then its own block's
        child = [sys.executable, str(script), *sys.argv[1:], "--child", "--objects", str(objects), "--object_scale",
                 str(scale)]
        result = subprocess.run(child, capture_output=True, text=True)
        if result.returncode:
            sys.stderr.write(result.stderr)
            return result.returncode
        for row in json.loads(result.stdout):
            rows.append(row)
            print_row(row)
    if args.compare:
        print_comparison(rows)
    elif len(args.arch) > 1 or args.amp:
        print_ratios(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
