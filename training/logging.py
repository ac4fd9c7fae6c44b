"""Training logs: scalars averaged over the logging interval and across ranks (as torchvision's reference
scripts do), TensorBoard images of a sample, and the run's provenance."""
import math
import subprocess
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid
from tqdm import tqdm

from util.preprocess import denormalise

# What a training step reports (stcn_loss's outputs; sec_iou only in batches with a second object).
STEP_VALUES = ("total_loss", "loss_1", "loss_2", "p", "iou", "sec_iou", "seconds_per_iteration", "data_seconds")


class IntervalAverages:
    """Running sums of each step's values since the last `averages()`, which returns their means over the
    interval and over all ranks. Every rank must call `averages()` at the same iteration."""

    def __init__(self, names: tuple[str, ...] = STEP_VALUES, device: torch.device = torch.device("cpu"),
                 world_size: int = 1) -> None:
        self.names = names
        self.device = device
        self.world_size = world_size
        self._reset()

    def _reset(self) -> None:
        self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        self.counts = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)

    def add(self, values: dict) -> None:
        """Values of one step (tensors stay on the device: no synchronisation per step); unknown names ignored."""
        for index, name in enumerate(self.names):
            if name in values:
                self.sums[index] += torch.as_tensor(values[name]).detach().to(self.device, torch.float64)
                self.counts[index] += 1

    def averages(self) -> dict[str, float]:
        """Means since the last call over every rank; names with no value in the interval are left out."""
        totals = torch.stack([self.sums, self.counts])
        if self.world_size > 1:
            dist.all_reduce(totals)
        self._reset()
        sums, counts = totals.cpu().tolist()
        return {name: total / count for name, total, count in zip(self.names, sums, counts) if count > 0}


def image_grid(batch: dict, out: dict) -> torch.Tensor:
    """Rows: frames, predicted first-object masks, ground truth, for the first sample of the batch."""
    frames = denormalise(batch["rgb"][0].float().cpu())  # T, 3, H, W
    num_frames = frames.shape[0]
    gt = batch["gt"][0].float().cpu().expand(-1, 3, -1, -1)
    pred = [batch["gt"][0, 0].float().cpu()] + [out[f"mask_{t}"][0, :1].float().detach().cpu()
                                                for t in range(1, num_frames)]
    pred = torch.stack(pred).expand(-1, 3, -1, -1)
    return make_grid(torch.cat([frames, pred, gt]), nrow=num_frames)


def git_commit(folder: Optional[Path] = None) -> str:
    """The code's commit, for the run's TensorBoard text ("unknown" outside a git checkout)."""
    folder = folder or Path(__file__).resolve().parent
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=folder,
                              timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class TrainingLog:
    """What a run shows and records as it trains (torchvision's MetricLogger, for one run): a progress bar,
    each logging interval's averages over ranks and the learning rate in TensorBoard, image grids, validation
    scores and notes. Rank 0 writes; every rank must call `interval_end` at the same iterations."""

    def __init__(self, trainer, log_folder: Path, total: Optional[int]) -> None:
        self.trainer = trainer
        config = trainer.config
        self.writer = SummaryWriter(str(log_folder)) if trainer.rank == 0 else None
        if self.writer is not None and trainer.iteration == 0:
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.to_json().items()))
            self.writer.add_text("git_commit", git_commit())
        self.averages = IntervalAverages(device=trainer.device, world_size=trainer.world_size)
        self.progress = tqdm(total=total, initial=trainer.iteration, desc=f"stage {config.stage}", unit="it",
                             disable=trainer.rank != 0, dynamic_ncols=True)
        self.last_loss = math.nan

    def __enter__(self) -> "TrainingLog":
        return self

    def __exit__(self, *exc) -> None:
        self.progress.close()
        if self.writer is not None:
            self.writer.close()

    def step(self, iteration: int, batch: dict, result: Optional[tuple[dict, dict]], seconds: float,
             data_seconds: float, budget_fraction: Optional[float] = None) -> None:
        """Training step `iteration` (its outputs and losses, or None if it was skipped) and what it took."""
        if result is not None:
            out, losses = result
            self.averages.add({**losses, "seconds_per_iteration": seconds, "data_seconds": data_seconds})
            self.last_loss = losses["total_loss"].item()
            shown = {"loss": f"{self.last_loss:.4f}", "p": f"{losses['p'].item():.2f}"}
            if budget_fraction is not None:
                shown["budget"] = f"{100 * min(1.0, budget_fraction):.0f}%"
            self.progress.set_postfix(shown)
            if self.writer is not None and iteration % self.trainer.config.log.log_image_every == 0:
                self.writer.add_image("train/frames_prediction_truth", image_grid(batch, out), iteration)
        self.progress.update()

    def interval_end(self, iteration: int) -> None:
        """The averages of the interval ending at `iteration` (over every rank) and the learning rate."""
        means = self.averages.averages()
        if self.writer is not None:
            for key, value in means.items():
                self.writer.add_scalar(f"train/{key}", value, iteration)
            self.writer.add_scalar("train/lr", self.trainer.scheduler.get_last_lr()[0], iteration)

    def validation(self, row: dict) -> None:
        self.note(f"iteration {row['iteration']}: validation J&F {row['jf']:.4f} (J {row['j']:.4f}, "
                  f"F {row['f']:.4f}; best {self.trainer.best_val:.4f})")
        if self.writer is not None:
            for key, name in (("jf", "J&F"), ("j", "J"), ("f", "F")):
                self.writer.add_scalar(f"val/{name}", row[key], row["iteration"])

    def note(self, text: str) -> None:
        self.progress.write(text)
