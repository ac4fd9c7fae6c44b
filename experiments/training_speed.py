"""Training speed and memory (scripts/benchmark_train.py): seconds per iteration split into data, forward
and backward, peak memory, ways of training timed side by side on the same batches, and the speed probe
of scripts/ablation_table.py."""
import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from tqdm import tqdm

from dataset.sampling import SeededSamples, TrainingSampler
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from dataset.vos_dataset import main_training_set
from training.config import TrainConfig, training_parser
from training.data import build_dataset
from training.trainer import Trainer
from util.distributed import peak_memory_bytes, pick_device
from util.fileio import InputError
from util.timing import Stopwatch


def make_data(root: Path, crop: int) -> None:
    """Small DAVIS and YouTubeVOS training sets with frames a little larger than the crop."""
    height = max(crop, 240)
    spec = dict(size=(height, height * 16 // 9), max_objects=3, progress=False)
    write_layout("davis", root / "DAVIS" / "2017" / "trainval", SyntheticSpec(videos=4, frames=12, seed=0, **spec))
    write_layout("youtube", root / "yv", SyntheticSpec(videos=4, frames=30, seed=1, **spec))
    (root / "YouTube").mkdir()
    (root / "yv" / "train").rename(root / "YouTube" / "train_480p")


# --compare variants: changes to the training configuration, combined with '+'
VARIANTS = {
    "literal": {"literal_forward": True},
    "default": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},  # not a train.py flag: torch.compile of the model (below)
    "amp": {"amp": True, "cpu_amp": True},
}


def parse_variant(name: str) -> dict:
    """The TrainConfig changes of a variant name ('compile' and 'threads' apply to the run, not the config)."""
    changes = {}
    for part in name.split("+"):
        key, _, value = part.partition("=")
        if key == "threads" and value.isdigit() and int(value) > 0:
            changes["threads"] = int(value)
        elif part in VARIANTS:
            changes.update(VARIANTS[part])
        else:
            raise argparse.ArgumentTypeError(f"unknown variant {part!r}; expected {', '.join(VARIANTS)} or "
                                             f"threads=N, joined by +")
    return changes


def base_config(args: argparse.Namespace, precision: str) -> TrainConfig:
    flags = ["--stage", "3", "--no_pretrained", "-b", str(args.batch), "--crop_size", str(args.crop),
             "--device", args.device, "--arch", args.arch[0]]
    flags += ["--no_amp"] if precision == "fp32" else ["--cpu_amp"]  # amp: fp16 + scaler on CUDA, bf16 on the CPU
    return TrainConfig.from_args(training_parser().parse_args(flags))


def batches(root: Path, args: argparse.Namespace):
    """The training batches of generated data, in a seeded order."""
    make_data(root, args.crop)
    dataset = main_training_set(root / "DAVIS", root / "YouTube", args.crop)
    return iter(DataLoader(SeededSamples(dataset), batch_size=args.batch, num_workers=args.num_workers,
                           sampler=TrainingSampler(len(dataset), args.batch, seed=0)))


def run_compare(args: argparse.Namespace) -> list[dict]:
    """The variants trained side by side on the same batches; one row per variant."""
    device = pick_device(args.device)
    base = base_config(args, "fp32")
    trainers, threads = [], []
    for name in args.compare:
        changes = parse_variant(name)
        threads.append(changes.pop("threads", torch.get_num_threads()))
        compiled = changes.pop("compile", False)
        trainer = Trainer(base.replaced(**changes), device)
        if compiled:
            trainer.model = torch.compile(trainer.model)
        trainer.train_mode()
        trainers.append(trainer)
    seconds = [[] for _ in trainers]
    first_step, first_loss = [0.0] * len(trainers), [0.0] * len(trainers)
    with tempfile.TemporaryDirectory() as folder:
        loader = batches(Path(folder), args)
        for iteration in range(args.iterations + 1):
            batch = trainers[0].to_device(next(loader))
            shift = iteration % len(trainers)
            for index in list(range(len(trainers)))[shift:] + list(range(len(trainers)))[:shift]:
                trainer = trainers[index]
                torch.set_num_threads(threads[index])
                watch = Stopwatch(device)
                _, losses = trainer.forward(batch)
                trainer.optimise(losses["total_loss"])
                elapsed = watch.lap()
                if iteration == 0:  # warms up allocators and kernels (and compiles)
                    first_step[index], first_loss[index] = elapsed, losses["total_loss"].item()
                else:
                    seconds[index].append(elapsed)
    reference = float(np.mean(seconds[0]))
    return [{"variant": name, "batch": args.batch, "crop": args.crop, "total": float(np.mean(times)),
             "ratio": reference / float(np.mean(times)), "first_step": first,
             "loss_difference": abs(loss - first_loss[0]) / abs(first_loss[0])}
            for name, times, first, loss in zip(args.compare, seconds, first_step, first_loss)]


def run_one(args: argparse.Namespace) -> dict:
    """Train `--iterations` steps of one configuration after one warm-up step; mean seconds of each part."""
    with tempfile.TemporaryDirectory() as folder:
        precision = args.precision[0]
        device = pick_device(args.device)
        trainer = Trainer(base_config(args, precision), device)
        trainer.train_mode()
        loader = batches(Path(folder), args)
        parts = {"data": [], "forward": [], "backward": []}
        for iteration in range(args.iterations + 1):
            watch = Stopwatch(device)
            batch = trainer.to_device(next(loader))
            data = watch.lap()
            _, losses = trainer.forward(batch)
            forward = watch.lap()
            trainer.optimise(losses["total_loss"])
            if iteration > 0:  # the first step warms up allocators and kernels
                parts["data"].append(data)
                parts["forward"].append(forward)
                parts["backward"].append(watch.lap())
    peak = peak_memory_bytes(device)
    means = {k: float(np.mean(v)) for k, v in parts.items()}
    return {"arch": args.arch[0], "precision": precision, "batch": args.batch, "crop": args.crop, **means, "total": sum(means.values()), "peak_mb": peak / 2**20}


def child_command(args: argparse.Namespace, script: Path, batch: int, crop: int) -> list[str]:
    return [sys.executable, str(script), "--batch", str(batch), "--crop", str(crop), "--iterations", str(args.iterations),
            "--num_workers", str(args.num_workers), "--device", args.device]


def run_all_compared(args: argparse.Namespace, script: Path) -> list[dict]:
    """One process per batch and crop size, timing the variants side by side."""
    rows = []
    print(f"{'variant':>28} {'batch':>5} {'crop':>5} {'s/iter':>7} {'speed-up':>8} {'first step s':>12} "
          f"{'loss difference':>15}")
    for crop in args.crop_sizes:
        for batch in args.batch_sizes:
            child = child_command(args, script, batch, crop) + ["--arch", args.arch[0], "--compare", *args.compare]
            for row in json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout):
                rows.append(row)
                print(f"{row['variant']:>28} {batch:>5} {crop:>5} {row['total']:>7.3f} {row['ratio']:>7.2f}x "
                      f"{row['first_step']:>12.2f} {row['loss_difference']:>15.1e}", flush=True)
    print(f"speed-up: seconds per iteration of {args.compare[0]} / of the variant, same batches, interleaved "
          f"({args.iterations} timed iterations after one warm-up); loss difference: first step, relative")
    return rows


def run_all(args: argparse.Namespace, script: Path) -> list[dict]:
    """One process per configuration, architecture and precision."""
    rows = []
    print(f"{'arch':>5} {'prec':>5} {'batch':>5} {'crop':>5} {'data s':>7} {'forward s':>9} {'backward s':>10} {'s/iter':>7} {'peak MB':>8}")
    for crop in args.crop_sizes:
        for batch in args.batch_sizes:
            for arch, precision in ((a, p) for a in args.arch for p in args.precision):
                child = child_command(args, script, batch, crop) + ["--arch", arch, "--precision", precision]
                row = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
                rows.append(row)
                print(f"{arch:>5} {precision:>5} {batch:>5} {crop:>5} {row['data']:>7.3f} {row['forward']:>9.3f} "
                      f"{row['backward']:>10.3f} {row['total']:>7.3f} {row['peak_mb']:>8.0f}", flush=True)
    return rows


def run(args: argparse.Namespace, script: Path) -> int:
    """The benchmark the flags ask for: one child process of `script` per configuration (its peak memory its
    own), or with `args.batch` this process's configuration, printed as JSON. Returns the exit status."""
    if args.precision is None:
        args.precision = ["amp" if pick_device(args.device).type == "cuda" else "fp32"]
    for name in args.compare or []:
        try:
            parse_variant(name)
        except argparse.ArgumentTypeError as error:
            raise InputError(f"--compare: {error}") from None
    if args.batch is not None:
        print(json.dumps(run_compare(args) if args.compare else run_one(args)))
        return 0
    rows = run_all_compared(args, script) if args.compare else run_all(args, script)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def typical_step_seconds(arguments: list[str], steps: int = 3) -> float:
    """The median seconds of a training step of exactly this train.py configuration, in this process, after
    one warm-up step (the ablation table's probe of each architecture's speed)."""
    config = TrainConfig.from_args(training_parser().parse_args(arguments))
    dataset = SeededSamples(build_dataset(config))
    trainer = Trainer(config, torch.device("cpu"))
    trainer.train_mode()
    times = []
    for step in tqdm(range(steps + 1), desc="timing an iteration", unit="it"):
        watch = Stopwatch()
        trainer.step(default_collate([dataset[(i, 1000 * step + i, 0)] for i in range(config.optim.batch_size)]))
        times.append(watch.lap())
    del trainer, dataset
    gc.collect()
    return float(np.median(times[1:]))
