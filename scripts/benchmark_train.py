"""Training speed and memory: seconds per iteration (data / forward / backward+step) and peak memory
for given batch and crop sizes, on generated DAVIS + YouTubeVOS data (stage-3 training).

Each configuration runs in its own process (so that its peak memory is its own); `--arch stcn stm`
times STCN and its STM baseline one after the other for each configuration, `--precision fp32 amp`
each in full and mixed precision. Example:
  python scripts/benchmark_train.py --batch_sizes 1 2 4 --crop_sizes 128 256 --iterations 5

`--compare A B ...` times ways of running the same training side by side instead: one process builds a
trainer per variant (same initial weights), and every iteration gives the same batch to each of them in
turn (the order rotating), so that a busy machine slows them alike. It prints seconds per iteration, the
ratio to the first variant and how far the first step's loss is from the first variant's. Variants
(join with +): literal (train.py --literal_forward: every convolution for every object, the code before
frame terms were shared and absent objects skipped), default, channels_last, compile (torch.compile of
the model), amp, threads=N (N CPU threads). Example:
  python scripts/benchmark_train.py --batch_sizes 4 --crop_sizes 160 --compare literal default channels_last
"""
import argparse
from pathlib import Path

from experiments import training_speed
from util.cli import ArgumentParser, output_file, run_cli


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--compare", nargs="+", type=str, metavar="VARIANT",
                        help=f"time these variants side by side, interleaved ({', '.join(training_speed.VARIANTS)}; join with +)")
    parser.add_argument("--json", type=output_file, help="also write the rows as JSON")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # one configuration (child process)
    parser.add_argument("--crop", type=int, help=argparse.SUPPRESS)
    return training_speed.run(parser.parse_args(), Path(__file__).resolve())


if __name__ == "__main__":
    run_cli(main)
