"""Charts drawn with matplotlib (off-screen) and written atomically: learning curves and per-object J&F."""
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")  # no screen: render to files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from util.fileio import atomic_path  # noqa: E402


def save_figure(figure: Figure, path: Path, dpi: int = 100) -> None:
    """Write a figure as PNG under a temporary name, rename it into place and free it."""
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)


def learning_curve(points: list[tuple[float, float]], baselines: dict[str, float], path: Path,
                   title: str = "J&F on the validation set", xlabel: str = "training minutes") -> None:
    """(x, J&F) points as a line, each baseline as a dashed horizontal line."""
    figure, axes = plt.subplots(figsize=(7.2, 4.4))
    xs, values = zip(*points)
    axes.plot(xs, values, "o-", color="tab:blue", label=f"trained ({values[-1]:.3f})")
    _baseline_lines(axes, baselines)
    top = max(list(values) + list(baselines.values()))
    axes.set(xlabel=xlabel, ylabel="J&F", title=title, ylim=(0, min(1.0, top * 1.2 + 0.05)))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    save_figure(figure, path)


def seed_curves(curves: dict[str, list[tuple[float, float]]], mean: Optional[list[tuple[float, float]]],
                baselines: dict[str, float], path: Path, title: str = "J&F on the validation set",
                xlabel: str = "training iterations") -> None:
    """One thin line of (x, J&F) points per seed, their `mean` (if given) as a thick line, and each baseline
    as a dashed horizontal line."""
    figure, axes = plt.subplots(figsize=(7.2, 4.4))
    for name, points in curves.items():
        xs, values = zip(*points)
        axes.plot(xs, values, ".-", linewidth=1, alpha=0.6, label=f"{name} ({values[-1]:.3f})")
    if mean is not None:
        xs, values = zip(*mean)
        axes.plot(xs, values, "o-", color="black", linewidth=2.5, label=f"mean ({values[-1]:.3f})")
    _baseline_lines(axes, baselines)
    axes.set(xlabel=xlabel, ylabel="J&F", title=title, ylim=(0, 1))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    save_figure(figure, path)


def _baseline_lines(axes, baselines: dict[str, float]) -> None:
    """Each baseline as a dashed horizontal line in its own colour, labelled with its value."""
    for (name, value), colour in zip(baselines.items(), ("tab:red", "tab:green", "tab:brown")):
        axes.axhline(value, linestyle="--", color=colour, label=f"{name} ({value:.3f})")


def per_object_chart(numbers: dict, path: Path, title: str) -> None:
    """Horizontal bars of each object's J and F (evaluate_davis's `per_object`), best J&F on top, with
    the set's mean J&F as a vertical line."""
    objects = sorted(numbers["per_object"].items(), key=lambda item: sum(item[1]))
    names = [name for name, _ in objects]
    j_values = [j for _, (j, _) in objects]
    f_values = [f for _, (_, f) in objects]
    positions = range(len(names))
    figure, axes = plt.subplots(figsize=(7.2, 1.2 + 0.28 * len(names)))
    axes.barh([p + 0.2 for p in positions], j_values, 0.4, label="J (region)", color="tab:blue")
    axes.barh([p - 0.2 for p in positions], f_values, 0.4, label="F (boundary)", color="tab:orange")
    axes.axvline(numbers["J&F-Mean"], color="black", linestyle="--", label=f"mean J&F {numbers['J&F-Mean']:.3f}")
    axes.set_yticks(list(positions), names, fontsize=8)
    axes.set(xlim=(0, 1), xlabel="score", title=title)
    axes.legend(loc="lower right", fontsize=8)
    save_figure(figure, path)
