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
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from experiments.pictures import overlay_gif
from experiments.recipe import (
    DEFAULT_MINUTES,
    DEMO_BATCH,
    DEMO_LR,
    MAX_CURVE_POINTS,
    PLAN_SHAPE,
    SEED,
    add_recipe_args,
    check_same_recipe,
    demo_recipe,
    eval_arguments,
    record_recipe,
    stopped_checkpoint,
    train_arguments,
    validation_settings,
    write_validation_set,
)
from experiments.runs import (
    ROOT,
    copy_first_mask,
    run_eval_davis,
    run_parity,
    run_train,
    untrained_weights,
)
from inference.reference import DEFAULT_REFERENCE
from training.validation import read_history
from util.cli import ArgumentParser, existing_folder, output_folder, run_cli
from util.fileio import atomic_path
from util.plots import learning_curve

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
        parser.error(f"--stop_at {args.stop_at}: a pause needs --iterations N (a budget plans its length as it goes) "
                     f"and must be between 1 and N - 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out = args.out.resolve()
    checkpoint = stopped_checkpoint(out) if args.resume else None
    if not args.skip_parity and not run_parity(args.reference):
        return 1
    data, save_dir = out / "data", out / "train"
    write_data(args, out, checkpoint)
    arguments, recipe, minutes_before, deadline = plan_training(args, out, checkpoint)
    print("    python train.py " + " ".join(arguments), flush=True)
    training = run_train(arguments, save_dir, deadline)
    train_minutes = minutes_before + training.minutes
    if training.paused:
        record_recipe(out, recipe, train_minutes)
        print(f"\nTraining paused ({training.paused}) at iteration {training.iteration} with a checkpoint: the "
              "same command with --resume (without --stop_at, or with a later one) continues it, then evaluates.")
        return 130 if training.paused == "Ctrl-C" else 0

    print("\n[4] Evaluation on the validation set with eval_davis.py", flush=True)
    scores = {"trained": run_eval_davis(training.weights, data, out / "masks", args, zip_too=True),
              "untrained": run_eval_davis(untrained_weights(out / "untrained.pth", args.seed), data, out / "untrained",
                                          args, zip_too=False),
              "copy_first": copy_first_mask(data, out / "copy_first")}
    print(f"\n    {'':12s} {'J&F':>6s} {'J':>6s} {'F':>6s}")
    for name, numbers in scores.items():
        print(f"    {name.replace('_', '-'):12s} {numbers['jf']:6.3f} {numbers['j']:6.3f} {numbers['f']:6.3f}")
    trained, untrained, copy_first = scores["trained"], scores["untrained"], scores["copy_first"]
    print(f"    trained - untrained = {trained['jf'] - untrained['jf']:+.3f}   "
          f"trained - copy-first = {trained['jf'] - copy_first['jf']:+.3f}   {trained['fps']:.1f} FPS", flush=True)

    print("\n[5] Pictures", flush=True)
    overlay_gif(data, out / "masks", out / "overlay.gif")
    run = training.weights.parent  # the run's folder: its network or its checkpoint is in it
    curve = [{"iteration": int(row["iteration"]), "minutes": row["train_minutes"], "jf": row["jf"]}
             for row in read_history(run / "val" / "history.csv")]  # validation during training
    learning_curve([(0.0, untrained["jf"])] + [(c["minutes"], c["jf"]) for c in curve],
                   {"copy-first": copy_first["jf"], "untrained": untrained["jf"]}, out / "learning_curve.png",
                   title="J&F on the synthetic validation set")
    summary = {
        "jf_trained": trained["jf"], "jf_untrained": untrained["jf"], "jf_copy_first": copy_first["jf"],
        "fps": trained["fps"], "train_minutes": train_minutes, "iterations": training.iteration,
        "j_f": {name: [numbers["j"], numbers["f"]] for name, numbers in scores.items()},
        "learning_curve": curve, "weights": str(training.weights.relative_to(out)),
        "train_command": "python train.py " + " ".join(arguments), "eval_flags": " ".join(eval_arguments(args)),
        "validation": validation_settings(args), "total_minutes": (time.perf_counter() - started) / 60,
    }
    with atomic_path(out / "demo_summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    print(f"    {out / 'overlay.gif'}\n    {out / 'learning_curve.png'}\n    {out / 'demo_summary.json'}")
    print(f"    TensorBoard: tensorboard --logdir {run / 'logs'}")
    print(f"\nDone in {summary['total_minutes']:.1f} min: everything is in {out}")
    return 0


def write_data(args: argparse.Namespace, out: Path, checkpoint: Optional[Path]) -> None:
    """[2] A new demo folder with its validation set, or (--resume) the stopped run's, kept."""
    data, (height, width) = out / "data", args.frame_size
    if checkpoint is not None:
        print(f"\n[2] Continuing the stopped run in {out} from {checkpoint.name}", flush=True)
    else:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        print(f"\n[2] Synthetic data in {out}", flush=True)
        write_validation_set(data, args.val_videos, args.val_frames, (height, width), args.objects)
        print(f"    validation: {args.val_videos} videos x {args.val_frames} frames at {height}x{width}, "
              f"1-{args.objects} objects ({data}, DAVIS layout)")
    drawn = f"one of {args.pool} fixed" if args.pool else "a fresh"
    train_height, train_width = args.train_size or args.frame_size
    print(f"    training: {drawn} {args.train_frames}-frame {train_height}x{train_width} video for every sample "
          f"(train.py --synthetic)", flush=True)


def plan_training(args: argparse.Namespace, out: Path,
                  checkpoint: Optional[Path]) -> tuple[list[str], dict, float, float]:
    """[3] train.py's arguments, the recipe they record, the training minutes of earlier parts of the run
    and the deadline after which train.py is stopped."""
    data, save_dir = out / "data", out / "train"
    points = min(MAX_CURVE_POINTS, max(1, args.curve_points))
    if args.iterations:  # exactly these iterations, however long they take: a recorded run repeated
        print(f"\n[3] Training with train.py for {args.iterations} iterations", flush=True)
        arguments = train_arguments(args, 3, args.iterations, save_dir, args.iterations, seed=args.seed,
                                    val_root=data, val_points=points)
        deadline = float("inf")
        print(f"    validated {points} times", flush=True)
    else:  # train.py plans the iterations from its measured speed, once start-up is over
        print(f"\n[3] Training with train.py for {args.minutes:g} minutes", flush=True)
        arguments = train_arguments(args, 3, PLAN_SHAPE, save_dir, 10 * PLAN_SHAPE, seed=args.seed, val_root=data,
                                    val_points=points, minutes=args.minutes)
        deadline = args.minutes * 60 * 1.5 + 300  # a safety net: train.py stops itself at the budget
        print(f"    {args.minutes:g} minutes of training steps (train.py --minutes), validated {points} times",
              flush=True)
    recipe = demo_recipe(args, arguments)
    minutes_before = check_same_recipe(out, recipe) if checkpoint is not None else 0.0
    record_recipe(out, recipe, minutes_before)
    arguments = arguments + (["--resume", str(checkpoint)] if checkpoint is not None else []) + \
        (["--stop_at", str(args.stop_at)] if args.stop_at else [])  # a new list: the recipe keeps its own
    return arguments, recipe, minutes_before, deadline


def _with_fast_malloc() -> None:
    """Start again with FAST_MALLOC in the environment (read by glibc at start; inherited by train.py
    and eval_davis.py); values already set are kept."""
    if any(key not in os.environ for key in FAST_MALLOC):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**FAST_MALLOC, **os.environ})


if __name__ == "__main__":
    _with_fast_malloc()
    run_cli(main)
