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
import json
import shutil
import sys
import time
from typing import Optional

from tqdm import tqdm

from experiments.ablation import (
    NETWORKS,
    plan_iterations,
    plot,
    summarise,
    train_and_evaluate,
    write_csv,
    write_markdown,
    write_runs_csv,
)
from experiments.recipe import SEED, add_recipe_args, write_validation_set
from experiments.runs import copy_first_mask
from util.cli import ArgumentParser, output_folder, run_cli
from util.fileio import atomic_path


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
    args = parse_args(argv)
    started = time.perf_counter()
    args.out = args.out.resolve()
    data = args.out / "data"
    args.out.mkdir(parents=True, exist_ok=True)
    height, width = args.frame_size
    settings_path = args.out / "settings.json"
    recipe = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
              if k not in ("out", "seeds")}
    if settings_path.is_file() and json.loads(settings_path.read_text())["recipe"] != json.loads(json.dumps(recipe)):
        raise SystemExit(f"error: {args.out} holds a run with other settings ({settings_path}); use another --out")
    if not (data / "ImageSets" / "2017" / "val.txt").is_file():
        shutil.rmtree(data, ignore_errors=True)
        write_validation_set(data, args.val_videos, args.val_frames, (height, width), args.objects)
    with atomic_path(settings_path) as tmp:
        tmp.write_text(json.dumps({"recipe": recipe}, indent=2))
    print(f"[1] Held-out videos: {args.val_videos} x {args.val_frames} frames at {height}x{width} ({data})")
    print("[2] Iterations per network", flush=True)
    iterations = plan_iterations(args)
    print(f"    {iterations} iterations for each of {len(NETWORKS)} networks x {args.seeds} seeds", flush=True)
    print("[3] Training and evaluation", flush=True)
    results = []
    jobs = [(arch, similarity, args.first_seed + k) for k in range(args.seeds) for arch, similarity in NETWORKS]
    for arch, similarity, seed in tqdm(jobs, desc="networks", unit="network"):
        result = train_and_evaluate(args, arch, similarity, seed, iterations, data)
        results.append(result)
        tqdm.write(f"    {arch.upper()}+{similarity} seed {seed}: J&F {result['every5_last']['jf']:.3f} (every 5th + "
                   f"last), {result['every5']['jf']:.3f} (every 5th only), {result['iterations']} iterations in "
                   f"{result['train_minutes']:.1f} min")
    copy_first = copy_first_mask(data, args.out / "copy_first")["jf"]
    rows = summarise(results)
    write_runs_csv(results, args.out / "runs.csv")
    write_csv(rows, args.out / "table.csv")
    settings = {"val_videos": args.val_videos, "val_frames": args.val_frames, "size": args.frame_size,
                "copy_first_jf": copy_first, "wall_minutes": (time.perf_counter() - started) / 60,
                "command": "python scripts/ablation_table.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    write_markdown(rows, results, settings, args.out / "table.md")
    plot(rows, args.out / "table.png")
    print("\n" + (args.out / "table.md").read_text())
    print(f"Written: {args.out / 'table.csv'}, {args.out / 'table.md'}, {args.out / 'table.png'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
