"""Table 1 of the supplementary (scripts/ablation_table.py): STM and STCN with dot-product and L2
similarity, each trained with the demo's recipe and evaluated with and without the last frame in memory;
the table over seeds, the paper's observations checked on it, and its files."""
import argparse
import csv
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from experiments.recipe import train_arguments, write_validation_set
from experiments.runs import copy_first_mask, evaluate_in_process, run_train
from experiments.training_speed import typical_step_seconds
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


def plan_iterations(args: argparse.Namespace) -> int:
    """The iterations every network trains: given, or what the slowest architecture fits in --minutes."""
    if args.iterations:
        return args.iterations
    probe_dir = args.out / "probe"
    slowest = 0.0
    for arch in ("stcn", "stm"):
        seconds = typical_step_seconds(train_arguments(args, 3, 1000, probe_dir, 1000) + ["--arch", arch])
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

def write_runs_csv(results: list[dict], path: Path) -> None:
    """Every seed's numbers, one row per network, seed and schedule."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "similarity", "seed", "iterations", "train_minutes", "schedule", "jf", "j", "f"])
        for r in results:
            for name in SCHEDULES:
                writer.writerow([r["arch"], r["similarity"], r["seed"], r["iterations"], round(r["train_minutes"], 2),
                                 name, round(r[name]["jf"], 5), round(r[name]["j"], 5), round(r[name]["f"], 5)])


def run_table(args: argparse.Namespace, command: str) -> int:
    """Train and score every network of the table for the parsed flags of scripts/ablation_table.py (`command`
    is recorded with the table); finished networks are kept. Returns the exit status."""
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
                "command": command}
    write_markdown(rows, results, settings, args.out / "table.md")
    plot(rows, args.out / "table.png")
    print("\n" + (args.out / "table.md").read_text())
    print(f"Written: {args.out / 'table.csv'}, {args.out / 'table.md'}, {args.out / 'table.png'}")
    return 0
