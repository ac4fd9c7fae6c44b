"""Validation during training: J&F on a held-out DAVIS-layout set, through the same inference core and
DAVIS metric as eval_davis.py, without leaving the training process."""
import csv
import time
from pathlib import Path
from typing import Optional

import torch

from inference.config import RunOptions
from inference.core import MemorySchedule
from inference.runner import run_videos
from inference.sources import Video, davis_split_root, davis_videos
from model.checkpoint import prepare_for_inference, save_weights
from model.network import MemoryNetwork
from training.trainer import RunPaths, Trainer
from util.distributed import rank_and_world
from util.fileio import atomic_path
from util.metrics import evaluate_davis

HISTORY_FIELDS = ("iteration", "jf", "j", "f", "train_minutes", "val_seconds")


class Validator:
    """Segments the `val` list of a DAVIS 2017-layout set (`<root>` or `<root>/trainval`) with the network
    being trained. Every rank segments its share of the videos; rank 0 scores them, appends a row to
    `<run>/val/history.csv` and keeps the best network as `<run>_best.pth` (with its card)."""

    def __init__(self, root: Path, schedule: MemorySchedule = MemorySchedule()) -> None:
        self.root = davis_split_root(Path(root))
        self.videos = davis_videos(self.root, "val", 2017, "480p")  # checks every video before training starts
        self.schedule = schedule

    def __call__(self, trainer: Trainer, run: RunPaths) -> Optional[dict]:
        """Validate the network at its current iteration; the history row on rank 0, None elsewhere."""
        start = time.perf_counter()
        network = prepare_for_inference(trainer.network, trainer.device)
        masks = run.folder / "val" / "masks"  # the latest validation's masks and per-sequence tables
        numbers = davis_jf(network, self.root, self.videos, self.schedule, masks, trainer.device)
        del network
        if numbers is None:  # not rank 0
            return None
        row = {"iteration": trainer.iteration, **numbers, "train_minutes": trainer.train_seconds / 60,
               "val_seconds": time.perf_counter() - start}
        write_history(history_path(run), read_history(history_path(run), before=trainer.iteration) + [row])
        if trainer.best_val is None or row["jf"] > trainer.best_val:
            trainer.best_val = row["jf"]
            save_weights(trainer.network, best_weights_path(run),
                         {"iteration": trainer.iteration, "run_name": run.name, "val_jf": row["jf"],
                          "val_root": str(self.root), "train_config": trainer.config.to_json()})
        return row


def davis_jf(network: MemoryNetwork, root: Path, videos: list[Video], schedule: MemorySchedule, masks: Path,
             device: torch.device) -> Optional[dict]:
    """Segment this rank's share of `videos` into `masks`; on rank 0 their J&F, J and F on the `val` list of
    the DAVIS set at `root` (None on other ranks)."""
    run_videos(network, videos, schedule, masks, RunOptions(device=device))
    if rank_and_world()[0] != 0:
        return None
    numbers = evaluate_davis(root, masks, "val", 2017, progress=False)
    return {"jf": numbers["J&F-Mean"], "j": numbers["J-Mean"], "f": numbers["F-Mean"]}


def history_path(run: RunPaths) -> Path:
    return run.folder / "val" / "history.csv"


def best_weights_path(run: RunPaths) -> Path:
    return run.folder / f"{run.name}_best.pth"


def read_history(path: Path, before: Optional[int] = None) -> list[dict]:
    """The rows of a validation history (those of iterations before `before`, if given: a run resumed
    from an earlier checkpoint validates those iterations again)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = [{key: (int(value) if key == "iteration" else float(value)) for key, value in row.items()}
                for row in csv.DictReader(handle)]
    return [row for row in rows if before is None or row["iteration"] < before]


def write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
