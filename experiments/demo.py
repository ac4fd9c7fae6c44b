"""`make demo` (scripts/demo.py): parity, a synthetic validation set, train.py for a budget, evaluation with
eval_davis.py and pictures, everything in one folder; a run paused by --stop_at or Ctrl-C continues."""
import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Optional

from experiments.pictures import overlay_gif
from experiments.recipe import (
    MAX_CURVE_POINTS,
    PLAN_SHAPE,
    check_same_recipe,
    demo_recipe,
    eval_arguments,
    record_recipe,
    stopped_checkpoint,
    train_arguments,
    validation_settings,
    write_validation_set,
)
from experiments.runs import copy_first_mask, run_eval_davis, run_parity, run_train, untrained_weights
from training.validation import read_history
from util.fileio import atomic_path
from util.plots import learning_curve


def run_demo(args: argparse.Namespace) -> int:
    """Steps [1]-[5] of `make demo` (scripts/demo.py) with its parsed flags; returns the exit status."""
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
    if args.iterations:  # exactly these iterations, however long they take (the schedule at the shares of N)
        print(f"\n[3] Training with train.py for {args.iterations} iterations", flush=True)
        arguments = train_arguments(args, 3, args.iterations, save_dir, args.iterations, seed=args.seed,
                                    val_root=data, val_points=points)
        deadline = float("inf")
        print(f"    validated {points} times", flush=True)
    else:  # train.py trains until the minutes are spent, each phase at its share of them
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


