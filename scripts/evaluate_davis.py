"""DAVIS J&F of a results folder (<sequence>/<frame>.png palette PNGs), as the official toolkit computes it.

Writes global_results-<set>.csv, per-sequence_results-<set>.csv and results.json into the results folder
(and with --plot per-sequence_results-<set>.png, each object's J and F as bars). Example: python scripts/evaluate_davis.py --davis_path ../DAVIS/2017/trainval --results output/d17
"""
import argparse
import sys

from util.cli import ArgumentParser, existing_folder, run_cli
from util.fileio import InputError
from util.metrics import evaluate_davis, format_tables
from util.plots import per_object_chart


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis_path", required=True, type=existing_folder,
                        help="DAVIS folder with Annotations/480p and ImageSets (e.g. DAVIS/2017/trainval)")
    parser.add_argument("--results", required=True, type=existing_folder, help="folder of <sequence>/<frame>.png results")
    parser.add_argument("--set", default="val", help="set list under ImageSets/<year> (default val)")
    parser.add_argument("--year", type=int, default=2017, choices=(2016, 2017),
                        help="2016 merges all objects into one (default 2017)")
    parser.add_argument("--workers", type=int,
                        help="processes, one sequence each at a time (default: min(2, CPUs) for sets of more than "
                             "about 240 frames at 480p, else 1)")
    parser.add_argument("--resolution", default="480p",
                        help="annotation level: 480p (default), Full-Resolution (2017) or 1080p (2016)")
    parser.add_argument("--plot", action="store_true", help="also chart each object's J and F")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: list[str]) -> int:
    """Evaluate, print the tables; exit code 2 with a one-line message on bad input."""
    args = parse_args(argv)
    try:
        numbers = evaluate_davis(args.davis_path, args.results, args.set, args.year, args.workers,
                                 resolution=args.resolution)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_tables(numbers, args.set))
    if args.plot:
        chart = args.results / f"per-sequence_results-{args.set}.png"
        per_object_chart(numbers, chart, f"DAVIS {args.year} {args.set}: {args.results.name}")
        print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
