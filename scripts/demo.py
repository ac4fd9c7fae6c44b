"""`make demo`: the codebase working end to end on this machine, with no dataset and no GPU.

  [1] parity: the network segments the reference clip as the authors' implementation does;
  [2] data: a synthetic validation set in the DAVIS layout (training draws a fresh synthetic video for
      every sample, so the training set is an endless stream: see dataset/synthetic_online.py);
  [3] training with train.py (stage 3 on fresh synthetic videos) for DEMO_MINUTES minutes (default 18),
      validated on the held-out set during training (train.py --val_root/--val_every);
  [4] evaluation with eval_davis.py: J&F of the trained network, of the same network untrained and of
      copying the first-frame mask to every frame; FPS; the submission zip;
  [5] pictures: an overlay GIF (prediction | ground truth) and the learning curve (the validation J&F
      during training against training minutes).

Everything goes to one folder (default demo_output/): data/, train/ (checkpoints and the TensorBoard log),
masks/ (the trained network's masks, submission.zip, timing.json, J&F CSVs), untrained/, copy_first/,
overlay.gif, learning_curve.png, demo_summary.json.

  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12
      # the 2-hour recipe of docs/results.md (2 h of training at 2.5 s per iteration)
  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12 --stop_at 1400   # a long run in two
  python scripts/demo.py --out demo_2h --iterations 2800 --curve_points 12 --resume          # parts (or Ctrl-C)
"""
import argparse
import os
import sys
from typing import Optional

from experiments.demo import run_demo
from experiments.recipe import DEFAULT_MINUTES, DEMO_BATCH, DEMO_LR, MAX_CURVE_POINTS, SEED, add_recipe_args
from experiments.runs import ROOT
from inference.reference import DEFAULT_REFERENCE
from util.cli import ArgumentParser, existing_folder, output_folder, run_cli

# glibc returns freed memory to the system and takes it back at every iteration (page faults on a VM): the
# demo's training keeps its heap, a few percent faster.
FAST_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(64 << 30), "MALLOC_TOP_PAD_": str(1 << 30),
               "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=existing_folder, default=DEFAULT_REFERENCE,
                        help="folder of the reference fixtures (default: the project's reference/)")
    parser.add_argument("--skip_parity", action="store_true", help="skip step 1")
    parser.add_argument("--out", type=output_folder, default=ROOT / "demo_output", help="the demo folder (replaced)")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("DEMO_MINUTES", DEFAULT_MINUTES)),
                        help="training budget in minutes (default: $DEMO_MINUTES or %(default)s)")
    parser.add_argument("--stop_at", type=int,
                        help="stop training at this iteration with a checkpoint (a job time limit, a long recipe "
                             "split over days); the same command with --resume continues it")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run stopped in --out (by --stop_at or Ctrl-C), given the flags it was "
                             "started with, then evaluate")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="train.py's seed: the network's initialisation and training samples (the validation "
                             "videos stay the same); repeat with other seeds to see the spread")
    add_recipe_args(parser)
    # twice the paper's rate (docs/learning.md, "Spread over seeds"); batch 2: about twice the iterations in
    # the budget; scripts/ablation_table.py keeps 1e-4 and batch 4, as its table was measured
    parser.set_defaults(lr=DEMO_LR, batch=DEMO_BATCH)
    recipe = parser.add_argument_group("learning curve")
    recipe.add_argument("--curve_points", type=int, default=5,
                        help="validations during training (train.py --val_every) for the learning curve "
                             "(at most %d)" % MAX_CURVE_POINTS)
    evaluation = parser.add_argument_group("evaluation (eval_davis.py flags)")
    evaluation.add_argument("--mem_every", type=int, default=5)
    evaluation.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("the training budget (--minutes / DEMO_MINUTES) must be positive")
    if not 2 <= args.sample_frames <= args.train_frames or args.max_jump < 0:
        parser.error(f"--sample_frames {args.sample_frames} must be between 2 and --train_frames "
                     f"({args.train_frames}), and --max_jump {args.max_jump} at least 0")
    if args.stop_at is not None and not (args.iterations and 1 <= args.stop_at < args.iterations):
        parser.error(f"--stop_at {args.stop_at}: a pause needs --iterations N (a budgeted run ends when its minutes are spent) "
                     f"and must be between 1 and N - 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    return run_demo(parse_args(argv))


def _with_fast_malloc() -> None:
    """Start again with FAST_MALLOC in the environment (read by glibc at start; inherited by train.py
    and eval_davis.py); values already set are kept."""
    if any(key not in os.environ for key in FAST_MALLOC):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**FAST_MALLOC, **os.environ})


if __name__ == "__main__":
    _with_fast_malloc()
    run_cli(main)
