"""Inference speed and memory of the propagation core against video length and object count.

Each object count runs in its own process on a synthetic video streamed frame by frame, as long as
the longest length asked for; a shorter video is its prefix, so its row is read off at that frame
(the peak memory is the process's running maximum at that point). Prints a table: frames/s, time per
frame at frame 20 and at the end, peak memory (RSS; CUDA max-allocated on a GPU), memory bank size,
and achieved GFLOP/s of a whole frame against the fp32 matmul rate measured in the same process.
Example: python scripts/benchmark_inference.py --lengths 50 100 200 --objects 1 3
"""
import argparse
import json
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dataset.synthetic import generate_video  # noqa: E402
from inference.core import InferenceCore, MemorySchedule  # noqa: E402
from model.fold import fold_batchnorm  # noqa: E402
from model.network import STCN  # noqa: E402
from util.distributed import peak_memory_bytes, pick_device, synchronise  # noqa: E402
from util.image import normalise  # noqa: E402

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


def streamed_frames(length: int, objects: int, size: tuple[int, int]):
    """A 20-frame synthetic clip played forwards and backwards: frames come one at a time, as from disk."""
    clip = generate_video(np.random.default_rng(0), 20, size, objects, min_objects=objects)
    first = clip.labels[0]
    for t in range(length):
        cycle = t % 38
        yield clip.frames[cycle if cycle < 20 else 38 - cycle], (first if t == 0 else None)


def bank_bytes(core: InferenceCore) -> int:
    keys, values = core.groups[0].bank.memory()
    return keys.numel() * keys.element_size() + values.numel() * values.element_size()


def run_one(args: argparse.Namespace) -> list[dict]:
    """Segment one synthetic video of max(lengths) frames; one row per length, read off at that frame."""
    device = pick_device(args.device)
    torch.manual_seed(0)
    network = fold_batchnorm(STCN().eval()).to(device)
    if args.channels_last:
        network = network.to(memory_format=torch.channels_last)
    core = InferenceCore(network, MemorySchedule(args.mem_every, args.include_last, args.top))
    rate = matmul_gflops(device)
    length = max(args.lengths)
    times, flops, rows = [], 0.0, []
    at_20 = None
    for t, (frame, mask) in enumerate(streamed_frames(length, args.objects, tuple(args.size))):
        image = normalise(frame).to(device)
        counter = FlopCounterMode(display=False) if t == 20 else None
        synchronise(device)
        start = time.perf_counter()
        with counter if counter is not None else nullcontext():
            core.step(image, mask, is_last=t == length - 1)
        synchronise(device)
        times.append(time.perf_counter() - start)
        if counter is not None:
            flops = counter.get_total_flops()
        if t == 21 + WINDOW:
            at_20 = float(np.mean(times[21:21 + WINDOW]))  # frame 20 itself ran under the FLOP counter
        if t + 1 in args.lengths:
            at_end = float(np.mean(times[-WINDOW:]))
            rows.append({
                "objects": args.objects, "length": t + 1, "fps": t / sum(times[1:]),
                "s_at_20": at_20, "s_at_end": at_end, "peak_mb": peak_memory_bytes(device) / 2**20,
                "bank_mb": bank_bytes(core) / 2**20, "frame_gflop": flops / 1e9,
                "achieved_gflops": flops / 1e9 / at_20, "matmul_gflops": rate,
            })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"))
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--mem_every", type=int, default=5)
    parser.add_argument("--include_last", action="store_true")
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one object count
    args = parser.parse_args()
    if min(args.lengths) <= 21 + WINDOW:
        parser.error(f"lengths must be above {21 + WINDOW} frames (the time per frame is compared with frame 20)")
    if args.child:
        args.objects = args.objects[0]
        print(json.dumps(run_one(args)))
        return 0
    rows = []
    print(f"{'objects':>7} {'frames':>6} {'FPS':>6} {'s/frame@20':>10} {'s/frame@end':>11} {'end/20':>6} "
          f"{'peak MB':>8} {'bank MB':>8} {'GFLOP/frame':>11} {'GFLOP/s':>8} {'matmul GFLOP/s':>14} {'ratio':>6}")
    for objects in args.objects:
        child = [sys.executable, __file__, "--child", "--lengths", *map(str, args.lengths), "--objects",
                 str(objects), "--size", *map(str, args.size), "--top", str(args.top), "--mem_every",
                 str(args.mem_every), "--device", args.device] + (["--include_last"] if args.include_last else []) \
            + (["--channels_last"] if args.channels_last else [])
        for row in json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout):
            rows.append(row)
            print(f"{objects:>7} {row['length']:>6} {row['fps']:>6.2f} {row['s_at_20']:>10.3f} "
                  f"{row['s_at_end']:>11.3f} {row['s_at_end'] / row['s_at_20']:>6.2f} {row['peak_mb']:>8.0f} "
                  f"{row['bank_mb']:>8.1f} {row['frame_gflop']:>11.1f} {row['achieved_gflops']:>8.1f} "
                  f"{row['matmul_gflops']:>14.1f} {row['achieved_gflops'] / row['matmul_gflops']:>6.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
