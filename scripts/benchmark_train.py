"""Training speed and memory: seconds per iteration (data / forward / backward+step) and peak memory
for given batch and crop sizes, on generated DAVIS + YouTubeVOS data (stage-3 training).

Each configuration runs in its own process (so that its peak memory is its own); `--arch stcn stm`
times STCN and its STM baseline one after the other for each configuration, `--precision fp32 amp`
each in full and mixed precision. Example:
  python scripts/benchmark_train.py --batch_sizes 1 2 4 --crop_sizes 128 256 --iterations 5
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from dataset.sampling import SeededSamples, TrainingSampler
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from dataset.vos_dataset import main_training_set
from training.config import TrainConfig, training_parser
from training.trainer import Trainer
from util.distributed import peak_memory_bytes, pick_device, synchronise


def make_data(root: Path, crop: int) -> None:
    """Small DAVIS and YouTubeVOS training sets with frames a little larger than the crop."""
    height = max(crop, 240)
    spec = dict(size=(height, height * 16 // 9), max_objects=3, progress=False)
    write_layout("davis", root / "DAVIS" / "2017" / "trainval", SyntheticSpec(videos=4, frames=12, seed=0, **spec))
    write_layout("youtube", root / "yv", SyntheticSpec(videos=4, frames=30, seed=1, **spec))
    (root / "YouTube").mkdir()
    (root / "yv" / "train").rename(root / "YouTube" / "train_480p")


def run_one(args: argparse.Namespace) -> dict:
    """Train `--iterations` steps of one configuration after one warm-up step; mean seconds of each part."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_data(root, args.crop)
        precision = args.precision[0]
        flags = ["--stage", "3", "--no_pretrained", "-b", str(args.batch), "--crop_size", str(args.crop),
                 "--device", args.device, "--arch", args.arch[0]]
        flags += ["--no_amp"] if precision == "fp32" else ["--cpu_amp"]  # amp: fp16 + scaler on CUDA, bf16 on the CPU
        config = TrainConfig.from_args(training_parser().parse_args(flags))
        device = pick_device(args.device)
        trainer = Trainer(config, device)
        trainer.train_mode()
        dataset = main_training_set(root / "DAVIS", root / "YouTube", args.crop)
        loader = iter(DataLoader(SeededSamples(dataset), batch_size=args.batch, num_workers=args.num_workers,
                                 sampler=TrainingSampler(len(dataset), args.batch, seed=0)))
        parts = {"data": [], "forward": [], "backward": []}
        for iteration in range(args.iterations + 1):
            start = time.perf_counter()
            batch = trainer.to_device(next(loader))
            synchronise(device)
            loaded = time.perf_counter()
            _, losses = trainer.forward(batch)
            synchronise(device)
            forwarded = time.perf_counter()
            trainer.optimise(losses["total_loss"])
            synchronise(device)
            if iteration > 0:  # the first step warms up allocators and kernels
                parts["data"].append(loaded - start)
                parts["forward"].append(forwarded - loaded)
                parts["backward"].append(time.perf_counter() - forwarded)
    peak = peak_memory_bytes(device)
    means = {k: float(np.mean(v)) for k, v in parts.items()}
    return {"arch": args.arch[0], "precision": precision, "batch": args.batch, "crop": args.crop, **means, "total": sum(means.values()), "peak_mb": peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--crop_sizes", type=int, nargs="+", default=[128, 256, 384])
    parser.add_argument("--iterations", type=int, default=5, help="measured steps after one warm-up step")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--precision", nargs="+", choices=("fp32", "amp"),
                        help="fp32 and/or mixed precision (fp16 with gradient scaling on CUDA, bf16 on the CPU), "
                             "each configuration once per precision (default: amp on CUDA, as train.py; fp32 on "
                             "the CPU)")
    parser.add_argument("--arch", nargs="+", choices=("stcn", "stm"), default=["stcn"])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # one configuration (child process)
    parser.add_argument("--crop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.precision is None:
        args.precision = ["amp" if pick_device(args.device).type == "cuda" else "fp32"]
    if args.batch is not None:
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    print(f"{'arch':>5} {'prec':>5} {'batch':>5} {'crop':>5} {'data s':>7} {'forward s':>9} {'backward s':>10} {'s/iter':>7} {'peak MB':>8}")
    for crop in args.crop_sizes:
        for batch in args.batch_sizes:
            for arch, precision in ((a, p) for a in args.arch for p in args.precision):
                child = [sys.executable, __file__, "--batch", str(batch), "--crop", str(crop), "--iterations",
                         str(args.iterations), "--num_workers", str(args.num_workers), "--device", args.device,
                         "--arch", arch, "--precision", precision]
                row = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
                rows.append(row)
                print(f"{arch:>5} {precision:>5} {batch:>5} {crop:>5} {row['data']:>7.3f} {row['forward']:>9.3f} "
                      f"{row['backward']:>10.3f} {row['total']:>7.3f} {row['peak_mb']:>8.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
