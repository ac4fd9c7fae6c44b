"""The spread of several demo runs, one per seed (scripts/summarise_demos.py): each run's numbers from its
demo_summary.json, a check that they are comparable, the markdown table with mean ± sample standard
deviation, and the mean learning curve."""
import json
import shlex
import statistics
from pathlib import Path
from typing import Optional

from util.cli import flag_values
from util.fileio import InputError, atomic_path
from util.plots import seed_curves

SUMMARY = "demo_summary.json"


# train.py flags that differ between runs of one recipe: the seed, where things go, and the length and
# schedule, which a budget places per run (the same shares of its minutes: the learning-rate step at 80%)
PER_RUN_FLAGS = {"--seed", "--save_dir", "--val_root", "--val_points", "-i", "--steps", "--curriculum_at", "--minutes", "--save_every",
                 "--resume", "--stop_at"}


def load_run(folder: Path) -> dict:
    """One demo run's numbers from its demo_summary.json, with the seed, the recipe (train.py's and the
    evaluation's flags) and the seconds per training iteration (minutes of training steps at the last
    validation, which is at the final iteration)."""
    path = folder / SUMMARY
    if not path.is_file():
        raise InputError(f"{path}: not found (is {folder} a scripts/demo.py output folder?)")
    try:
        summary = json.loads(path.read_text())
        train_flags = flag_values(shlex.split(summary["train_command"]))
        curve = summary["learning_curve"]
        run = {
            "folder": folder, "jf": summary["jf_trained"], "j": summary["j_f"]["trained"][0],
            "f": summary["j_f"]["trained"][1], "copy_first": summary["jf_copy_first"],
            "untrained": summary["jf_untrained"], "iterations": summary["iterations"],
            "fps": summary["fps"], "validation": summary["validation"], "curve": curve,
            "seed": int(train_flags["--seed"]),
            "recipe": {**{k: v for k, v in train_flags.items() if k not in PER_RUN_FLAGS},
                       **flag_values(shlex.split(summary["eval_flags"]))},
        }
        if not curve or curve[-1]["iteration"] != run["iterations"]:
            raise InputError(f"{path}: the learning curve does not end at the final iteration {run['iterations']}")
        run["seconds_per_iteration"] = curve[-1]["minutes"] * 60 / run["iterations"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as error:
        raise InputError(f"{path}: not a demo summary ({type(error).__name__}: {error})") from None
    return run


def check_comparable(runs: list[dict]) -> None:
    """Runs are averaged only if they were trained with one recipe from different seeds and scored on the
    same validation set with the same evaluation flags."""
    first = runs[0]
    for run in runs[1:]:
        if run["validation"] != first["validation"] or abs(run["copy_first"] - first["copy_first"]) > 1e-9:
            raise InputError(f"{run['folder']}: scored on another validation set than {first['folder']} "
                             f"({run['validation']}, copy-first {run['copy_first']:.4f} against "
                             f"{first['validation']}, {first['copy_first']:.4f})")
        ours, theirs = run["recipe"], first["recipe"]
        changed = [f"{flag} {ours.get(flag, '(unset)')} against {theirs.get(flag, '(unset)')}"
                   for flag in sorted(set(ours) | set(theirs)) if ours.get(flag) != theirs.get(flag)]
        if changed:
            raise InputError(f"{run['folder']}: another recipe than {first['folder']} ({', '.join(changed)}): "
                             "its spread would mix the seeds with the change")
    seen: dict[int, Path] = {}
    for run in runs:
        if run["seed"] in seen:
            raise InputError(f"{run['folder']}: trained with seed {run['seed']}, as {seen[run['seed']]} was: "
                             "the same run twice is not a spread")
        seen[run["seed"]] = run["folder"]


def mean_and_spread(values: list[float]) -> tuple[float, Optional[float]]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _with_spread(values: list[float], style: str = ".3f") -> str:
    """'mean ± sd' (or the mean alone for one value), both in `style`."""
    mean, spread = mean_and_spread(values)
    return format(mean, style) if spread is None else f"{format(mean, style)} ± {spread:{style.lstrip('+')}}"


def _curve_cell(curve: list[dict]) -> str:
    """The validation J&F along a run, in order."""
    return " / ".join(f"{point['jf']:.3f}" for point in curve)


def mean_curve(runs: list[dict]) -> Optional[list[tuple[int, float]]]:
    """(iteration, mean J&F) over the runs where every run was validated at the same iterations, else None."""
    iterations = [[point["iteration"] for point in run["curve"]] for run in runs]
    if any(points != iterations[0] for points in iterations):
        return None
    return [(iteration, statistics.fmean(run["curve"][k]["jf"] for run in runs))
            for k, iteration in enumerate(iterations[0])]


def markdown_table(runs: list[dict]) -> str:
    """The runs, one row each, then their mean ± sample standard deviation (or 'one run')."""
    rows = ["| folder | seed | iterations | s per iteration | J&F | J | F | J&F - copy-first | J&F along the way |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        rows.append(f"| {run['folder'].name} | {run['seed']} | {run['iterations']} | "
                    f"{run['seconds_per_iteration']:.2f} | {run['jf']:.3f} | {run['j']:.3f} | {run['f']:.3f} | "
                    f"{run['jf'] - run['copy_first']:+.3f} | {_curve_cell(run['curve'])} |")
    mean = mean_curve(runs)
    mean_cell = " / ".join(f"{jf:.3f}" for _, jf in mean) if mean is not None else "(different iterations)"
    label = f"mean ± sd ({len(runs)} runs)" if len(runs) > 1 else "one run (no spread)"
    rows.append(
        f"| **{label}** | | {_with_spread([run['iterations'] for run in runs], '.0f')} | "
        f"{_with_spread([run['seconds_per_iteration'] for run in runs], '.2f')} | "
        f"**{_with_spread([run['jf'] for run in runs])}** | {_with_spread([run['j'] for run in runs])} | "
        f"{_with_spread([run['f'] for run in runs])} | "
        f"{_with_spread([run['jf'] - run['copy_first'] for run in runs], '+.3f')} | {mean_cell} |")
    first = runs[0]
    rows.append("")
    rows.append(f"Copy-first {first['copy_first']:.3f}; untrained {_with_spread([run['untrained'] for run in runs])}; "
                f"the smallest margin over copy-first is {min(run['jf'] - run['copy_first'] for run in runs):+.3f}.")
    return "\n".join(rows) + "\n"


def summarise_runs(folders: list[Path], markdown: Optional[Path] = None, plot: Optional[Path] = None) -> str:
    """The table of the runs in `folders` (also written to `markdown`, their curves drawn to `plot`)."""
    runs = [load_run(folder) for folder in folders]
    check_comparable(runs)
    table = markdown_table(runs)
    if markdown:
        with atomic_path(markdown) as tmp:
            tmp.write_text(table)
    if plot:
        curves = {f"seed {run['seed']}": [(point["iteration"], point["jf"]) for point in run["curve"]] for run in runs}
        mean = mean_curve(runs) if len(runs) > 1 else None
        seed_curves(curves, mean, {"copy-first": runs[0]["copy_first"]}, plot,
                    title=f"J&F on the validation set, {len(runs)} seeds")
    return table
