"""Table 1 of the supplementary with one command: STM and STCN, each with dot-product and L2 similarity,
each evaluated with "every 5th frame + last" and "every 5th frame only", over several seeds.

Every network is trained by train.py on the built-in synthetic videos with the `make demo` recipe
(scripts/demo.py) for the same number of iterations, and evaluated on the same held-out synthetic
videos (DAVIS layout) with both memory schedules. Writes to --out:
  table.csv   one row per network and schedule: arch, similarity, schedule, seeds, jf_mean, jf_std (J&F as
              fractions, the spread is the sample standard deviation over seeds), j_mean, f_mean, iterations
  table.md    the table beside the paper's numbers, the schedule effect per network (paired over seeds),
              and which of the paper's observations the run reproduces
  table.png   a bar chart (ours with the spread over seeds | the paper's)
  runs.csv    every seed's numbers; runs/<arch>_<similarity>_seed<k>/ the trained weights and result.json
A run that is stopped can be started again with the same command: finished networks are not retrained.

  python scripts/ablation_table.py --out ablation --iterations 200 --seeds 2
  python scripts/ablation_table.py --out ablation --minutes 10 --seeds 3   # iterations from a timed probe
"""
import argparse
import sys
from typing import Optional

from experiments.ablation import run_table
from experiments.recipe import SEED, add_recipe_args
from util.cli import ArgumentParser, output_folder, run_cli


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, required=True, help="the run folder (kept: a rerun continues it)")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float,
                        help="training budget per network: every network trains as many iterations as the slowest "
                             "architecture fits in it (timed probe), and is stopped at 1.15x the budget at most")
    budget.add_argument("--iterations", type=int, help="train every network for exactly this many iterations")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per network (default %(default)s)")
    parser.add_argument("--first_seed", type=int, default=SEED, help="seeds are first_seed, first_seed+1, ...")
    add_recipe_args(parser, iterations_flag=False)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if (args.minutes is not None and args.minutes <= 0) or (args.iterations is not None and args.iterations < 1):
        parser.error("the budget (--minutes or --iterations) must be positive")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_table(parse_args(argv), "python scripts/ablation_table.py " + " ".join(argv))


if __name__ == "__main__":
    run_cli(main)
