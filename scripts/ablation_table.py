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
import csv
import gc
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from demo import (
    SEED,
    add_recipe_args,
    copy_first_mask,
    evaluate_in_process,
    run_train,
    train_arguments,
    write_validation_set,
)
from tqdm import tqdm

from inference.core import MemorySchedule
from util.fileio import atomic_path
from util.plots import plt, save_figure

NETWORKS = (("stm", "dot"), ("stm", "l2"), ("stcn", "dot"), ("stcn", "l2"))  # the paper's row order
SCHEDULES = {"every5_last": MemorySchedule(mem_every=5, include_last=True),
             "every5": MemorySchedule(mem_every=5, include_last=False)}
# Supplementary Table 1, DAVIS 2017 val J&F (as fractions)
PAPER = {("stm", "dot"): (0.833, 0.813), ("stm", "l2"): (0.827, 0.810),
         ("stcn", "dot"): (0.843, 0.841), ("stcn", "l2"): (0.831, 0.854)}
SCHEDULE_NAMES = {"every5_last": "every 5th + last", "every5": "every 5th only"}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the run folder (kept: a rerun continues it)")
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


def seconds_per_iteration(arguments: list[str], steps: int = 3) -> float:
    """Time a few training steps of exactly this configuration in this process (after one warm-up step)."""
    from torch.utils.data import default_collate

    from dataset.sampling import SeededSamples
    from training.config import TrainConfig, training_parser
    from training.data import build_dataset
    from training.trainer import Trainer

    config = TrainConfig.from_args(training_parser().parse_args(arguments))
    dataset = SeededSamples(build_dataset(config))
    trainer = Trainer(config, torch.device("cpu"))
    trainer.train_mode()
    times = []
    for step in tqdm(range(steps + 1), desc="timing an iteration", unit="it"):
        start = time.perf_counter()
        batch = default_collate([dataset[(i, 1000 * step + i, 0)] for i in range(config.batch_size)])
        trainer.step(batch)
        times.append(time.perf_counter() - start)
    del trainer, dataset
    gc.collect()
    return float(np.median(times[1:]))


def plan_iterations(args: argparse.Namespace) -> int:
    """The iterations every network trains: given, or what the slowest architecture fits in --minutes."""
    if args.iterations:
        return args.iterations
    probe_dir = args.out / "probe"
    slowest = 0.0
    for arch in ("stcn", "stm"):
        seconds = seconds_per_iteration(train_arguments(args, 3, 1000, probe_dir, 1000) + ["--arch", arch])
        print(f"    {arch.upper()}: {seconds:.2f} s per iteration", flush=True)
        slowest = max(slowest, seconds)
    shutil.rmtree(probe_dir, ignore_errors=True)
    return max(1, int(args.minutes * 60 / slowest))


def train_and_evaluate(args: argparse.Namespace, arch: str, similarity: str, seed: int, iterations: int,
                       data: Path) -> dict:
    """Train one network (or reuse a finished one) and evaluate it with both schedules."""
    folder = args.out / "runs" / f"{arch}_{similarity}_seed{seed}"
    result_path = folder / "result.json"
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        if result["iterations_planned"] == iterations:
            return result
    shutil.rmtree(folder, ignore_errors=True)
    save_dir = folder / "train"
    arguments = train_arguments(args, 3, iterations, save_dir, iterations, seed=seed, run_id=f"{arch}_{similarity}")
    arguments += ["--arch", arch, "--similarity", similarity]
    deadline = args.minutes * 60 * 1.15 + 60 if args.minutes else math.inf
    training = run_train(arguments, save_dir, deadline)
    if training.paused:  # Ctrl-C: this network is retrained by the next run; the finished ones are kept
        raise SystemExit(f"stopped while training {folder.name}: the same command continues the table")
    weights, done, minutes = training.weights, training.iteration, training.minutes
    result = {"arch": arch, "similarity": similarity, "seed": seed, "iterations_planned": iterations,
              "iterations": done, "train_minutes": minutes, "weights": str(weights.relative_to(args.out))}
    for name, schedule in SCHEDULES.items():
        masks = folder / f"masks_{name}"
        result[name] = evaluate_in_process(weights, data, masks, schedule)
        shutil.rmtree(masks)
    checkpoint = next(save_dir.glob("*/*_checkpoint.pth"), None)
    if checkpoint is not None and checkpoint != weights:
        checkpoint.unlink()  # finished: the network alone (and its card) is what the table needs
    with atomic_path(result_path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result


def summarise(results: list[dict]) -> list[dict]:
    """One row per network and schedule: mean and sample standard deviation over seeds."""
    rows = []
    for arch, similarity in NETWORKS:
        runs = [r for r in results if (r["arch"], r["similarity"]) == (arch, similarity)]
        for name in SCHEDULES:
            jf = np.array([r[name]["jf"] for r in runs])
            rows.append({
                "arch": arch, "similarity": similarity, "schedule": name, "seeds": len(runs),
                "jf_mean": float(jf.mean()), "jf_std": float(jf.std(ddof=1)) if len(runs) > 1 else math.nan,
                "j_mean": float(np.mean([r[name]["j"] for r in runs])),
                "f_mean": float(np.mean([r[name]["f"] for r in runs])),
                "iterations": int(np.mean([r["iterations"] for r in runs])),
                "paper_jf": PAPER[(arch, similarity)][list(SCHEDULES).index(name)],
            })
    return rows


def schedule_effect(results: list[dict], arch: str, similarity: str) -> tuple[float, float, int]:
    """J&F of 'every 5th only' minus 'every 5th + last', paired per seed: mean, standard error, seeds."""
    diffs = np.array([r["every5"]["jf"] - r["every5_last"]["jf"] for r in results
                      if (r["arch"], r["similarity"]) == (arch, similarity)])
    error = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan
    return float(diffs.mean()), error, len(diffs)


def verdict(effect: float, error: float, expected_sign: int) -> str:
    """Whether a measured difference has the expected sign beyond twice its standard error."""
    if math.isnan(error):
        return "one seed: no spread to judge by"
    if abs(effect) <= 2 * error:
        return "within the noise (|mean| <= 2 standard errors)"
    return "reproduced" if np.sign(effect) == expected_sign else "the opposite, beyond the noise"


def observations(results: list[dict]) -> list[str]:
    """The paper's three observations about Table 1, checked on this run."""
    lines = []
    stm = [schedule_effect(results, "stm", s) for s in ("dot", "l2")]
    for similarity, (effect, error, _) in zip(("dot", "l2"), stm):
        lines.append(f"1. STM+{similarity}: dropping the last frame changes J&F by {effect:+.3f} "
                     f"(s.e. {error:.3f}); the paper: a significant drop: {verdict(effect, error, -1)}")
    effect, error, _ = schedule_effect(results, "stcn", "dot")
    stm_drop = min(e for e, _, _ in stm)
    slight = "smaller than STM's" if abs(effect) < abs(stm_drop) else "not smaller than STM's"
    lines.append(f"2. STCN+dot: dropping the last frame changes J&F by {effect:+.3f} (s.e. {error:.3f}), {slight} "
                 f"({stm_drop:+.3f}); the paper: a slight drop (-0.002)")
    effect, error, _ = schedule_effect(results, "stcn", "l2")
    lines.append(f"3. STCN+L2: dropping the last frame changes J&F by {effect:+.3f} (s.e. {error:.3f}); the paper: "
                 f"better without it (+0.023): {verdict(effect, error, +1)}")
    return lines


def _cell(row: dict) -> str:
    spread = "" if math.isnan(row["jf_std"]) else f" ± {row['jf_std']:.3f}"
    return f"{row['jf_mean']:.3f}{spread}"


def write_markdown(rows: list[dict], results: list[dict], settings: dict, path: Path) -> None:
    seeds = rows[0]["seeds"]
    spread = f"mean ± sample standard deviation over {seeds} seeds" if seeds > 1 else "one seed (no spread)"
    lines = [
        f"J&F on {settings['val_videos']} held-out synthetic videos ({settings['val_frames']} frames, "
        f"{settings['size'][0]}x{settings['size'][1]}), {spread}; every network trained "
        f"{rows[0]['iterations']} iterations with the `make demo` recipe. Paper: DAVIS 2017 val.",
        "",
        "| network | every 5th + last | every 5th only | only - last (paired) | paper: + last | paper: only |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for arch, similarity in NETWORKS:
        last, only = (next(r for r in rows if (r["arch"], r["similarity"], r["schedule"]) == (arch, similarity, s))
                      for s in SCHEDULES)
        effect, error, _ = schedule_effect(results, arch, similarity)
        error_text = "" if math.isnan(error) else f" (s.e. {error:.3f})"
        name = f"{arch.upper()} + {'dot product' if similarity == 'dot' else 'L2'}"
        lines.append(f"| {name} | {_cell(last)} | {_cell(only)} | {effect:+.3f}{error_text} | "
                     f"{last['paper_jf']:.3f} | {only['paper_jf']:.3f} |")
    copy_first = settings.get("copy_first_jf")
    if copy_first is not None:
        lines += ["", f"Copying the first frame's mask to every frame scores {copy_first:.3f} on the same videos."]
    lines += ["", "The paper's observations on this run:", ""] + [f"- {line}" for line in observations(results)]
    lines += ["", f"Wall time: {settings['wall_minutes']:.1f} min. Command: `{settings['command']}`"]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], path: Path) -> None:
    """Grouped bars per network (two schedules) with the spread over seeds, beside the paper's."""
    names = [f"{a.upper()}\n{'dot' if s == 'dot' else 'L2'}" for a, s in NETWORKS]
    x = np.arange(len(NETWORKS))
    figure, (ours, paper) = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for offset, name in ((-0.2, "every5_last"), (0.2, "every5")):
        selected = [next(r for r in rows if (r["arch"], r["similarity"], r["schedule"]) == (a, s, name))
                    for a, s in NETWORKS]
        errors = [0 if math.isnan(r["jf_std"]) else r["jf_std"] for r in selected]
        ours.bar(x + offset, [r["jf_mean"] for r in selected], 0.4, yerr=errors, capsize=4,
                 label=SCHEDULE_NAMES[name])
        paper.bar(x + offset, [r["paper_jf"] for r in selected], 0.4, label=SCHEDULE_NAMES[name])
    seeds = rows[0]["seeds"]
    ours.set_title(f"synthetic, {rows[0]['iterations']} iterations, {seeds} seed{'s' if seeds > 1 else ''}")
    paper.set_title("paper (DAVIS 2017 val)")
    paper.set_ylim(0.75, 0.9)
    for axis in (ours, paper):
        axis.set_xticks(x, names)
        axis.set_ylabel("J&F")
        axis.legend(loc="lower right", fontsize=8)
    save_figure(figure, path, dpi=110)


def write_csv(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                                 round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    args.out = args.out.resolve()
    data = args.out / "data"
    args.out.mkdir(parents=True, exist_ok=True)
    height, width = args.size
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
    with atomic_path(args.out / "runs.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "similarity", "seed", "iterations", "train_minutes", "schedule", "jf", "j", "f"])
        for r in results:
            for name in SCHEDULES:
                writer.writerow([r["arch"], r["similarity"], r["seed"], r["iterations"], round(r["train_minutes"], 2),
                                 name, round(r[name]["jf"], 5), round(r[name]["j"], 5), round(r[name]["f"], 5)])
    write_csv(rows, args.out / "table.csv")
    settings = {"val_videos": args.val_videos, "val_frames": args.val_frames, "size": args.size,
                "copy_first_jf": copy_first, "wall_minutes": (time.perf_counter() - started) / 60,
                "command": "python scripts/ablation_table.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    write_markdown(rows, results, settings, args.out / "table.md")
    plot(rows, args.out / "table.png")
    print("\n" + (args.out / "table.md").read_text())
    print(f"Written: {args.out / 'table.csv'}, {args.out / 'table.md'}, {args.out / 'table.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
