"""The spread of several `scripts/demo.py` runs, one per seed: each run's J&F beside copy-first, the mean ±
sample standard deviation over the runs, the seconds per training iteration, and the mean learning curve.

One run says little (two single runs differ by about 0.04 J&F here), so docs/results.md reports demo numbers
over seeds:

  python scripts/demo.py --out demo_s14159265                 # train.py's default seed
  python scripts/demo.py --out demo_s1 --seed 1 --iterations 212   # the first run's count
  python scripts/demo.py --out demo_s2 --seed 2 --iterations 212
  python scripts/summarise_demos.py demo_s14159265 demo_s1 demo_s2 --markdown spread.md --plot spread.png

The runs must have been scored on the same validation set and trained with different seeds.
"""
import argparse
from typing import Optional

from experiments.summary import summarise_runs
from util.cli import ArgumentParser, existing_folder, output_file, run_cli


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=existing_folder, nargs="+", help="scripts/demo.py output folders (one per seed)")
    parser.add_argument("--markdown", type=output_file, help="also write the table to this file")
    parser.add_argument("--plot", type=output_file,
                        help="also draw every run's learning curve, their mean and copy-first to this PNG")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    print(summarise_runs(args.runs, args.markdown, args.plot), end="")
    return 0


if __name__ == "__main__":
    run_cli(main)
