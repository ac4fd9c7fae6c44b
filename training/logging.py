"""Training logs: scalars averaged over the logging interval and across ranks (as torchvision's reference
scripts do), TensorBoard images of a sample, and the run's provenance."""
import subprocess
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from torchvision.utils import make_grid

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
