"""Average the probabilities of several evaluation runs (scales, flips, models) into final masks.

Each RUN is the --output folder of eval_davis.py / eval_youtube.py / eval_generic.py run with --save_scores.
Writes <output>/<video>/<frame>.png (DAVIS) or <output>/Annotations/<video>/<frame>.png (YouTubeVOS), and
with --zip the benchmark's submission.zip. Example (the paper's multi-scale testing):
  python scripts/merge_scores.py --inputs out/yv_480 out/yv_480_flip out/yv_600 out/yv_600_flip --output out/yv_ms --zip
"""
import argparse

from inference.merge import merge_runs
from util.cli import ArgumentParser, existing_folder, output_folder, run_cli


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=existing_folder, nargs="+", required=True, help="evaluation output folders")
    parser.add_argument("--output", type=output_folder, required=True)
    parser.add_argument("--zip", action="store_true", help="also write submission.zip")
    args = parser.parse_args()
    frames = merge_runs(args.inputs, args.output, args.zip)
    print(f"merged {len(args.inputs)} runs: {frames} frames written under {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
