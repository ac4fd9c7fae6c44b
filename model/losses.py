"""Bootstrapped cross-entropy (hard pixel mining) with the schedule of seed F.5, and training IoU."""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class BootstrapSchedule:
    """Plain cross-entropy until `start_warm`; then the top p of pixels, p falling linearly from 1 to
    `top_p` by `end_warm` and fixed afterwards."""

    start_warm: int = 20_000
    end_warm: int = 70_000
    top_p: float = 0.15

    def fraction(self, iteration: int) -> float:
        """The fraction p of hardest pixels that carry the loss at this iteration."""
        if iteration < self.start_warm:
            return 1.0
        if iteration > self.end_warm:
            return self.top_p
        remaining = (self.end_warm - iteration) / (self.end_warm - self.start_warm)
        return self.top_p + (1 - self.top_p) * remaining


def bootstrapped_cross_entropy(logits: torch.Tensor, target: torch.Tensor, iteration: int,
                               schedule: BootstrapSchedule = BootstrapSchedule()) -> tuple[torch.Tensor, float]:
    """Mean cross-entropy over the hardest p of pixels; logits (B, C, H, W), target (B, H, W) class ids."""
    p = schedule.fraction(iteration)
    if iteration < schedule.start_warm:
        return F.cross_entropy(logits, target), p
    pixel_loss = F.cross_entropy(logits, target, reduction="none").flatten()
    hardest, _ = torch.topk(pixel_loss, int(pixel_loss.numel() * p), sorted=False)
    return hardest.mean(), p


def class_target(gt: torch.Tensor, sec_gt: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Class ids (B, T, H, W) from binary masks (B, T, 1, H, W): 0 background, 1 first, 2 second object."""
    target = (gt[:, :, 0] > 0.5).long()
    if sec_gt is not None:
        target[sec_gt[:, :, 0] > 0.5] = 2
    return target


def intersection_union(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed intersection and union of two boolean masks."""
    return (pred & gt).sum(), (pred | gt).sum()


def stcn_loss(out: dict[str, torch.Tensor], gt: torch.Tensor, sec_gt: Optional[torch.Tensor],
              selector: Optional[torch.Tensor], iteration: int,
              schedule: BootstrapSchedule = BootstrapSchedule()) -> dict[str, torch.Tensor]:
    """Training losses of one pass: `loss_t` per predicted frame, `total_loss`, mean bootstrap `p`,
    and `iou` of the first object (and `sec_iou` of the second where there is one).

    Each sample is scored on 3 classes where its second object exists and on the first 2 otherwise;
    losses are averaged over the batch and summed over frames 1..T-1.
    """
    batch, num_frames = gt.shape[:2]
    target = class_target(gt, sec_gt)
    losses: dict[str, torch.Tensor] = {}
    total = 0.0
    p_sum = 0.0
    inter = union = sec_inter = sec_union = 0
    has_second = selector is not None and bool((selector[:, 1] > 0.5).any())
    for t in range(1, num_frames):
        logits = out[f"logits_{t}"]
        frame_loss = 0.0
        for b in range(batch):
            second = selector is not None and bool(selector[b, 1] > 0.5)
            classes = logits[b:b + 1] if second else logits[b:b + 1, :2]
            loss, p = bootstrapped_cross_entropy(classes, target[b:b + 1, t], iteration, schedule)
            frame_loss = frame_loss + loss / batch
            p_sum += p
        losses[f"loss_{t}"] = frame_loss
        total = total + frame_loss
        i, u = intersection_union(out[f"mask_{t}"][:, 0] > 0.5, gt[:, t, 0] > 0.5)
        inter, union = inter + i, union + u
        if has_second:
            i, u = intersection_union(out[f"mask_{t}"][:, 1] > 0.5, sec_gt[:, t, 0] > 0.5)
            sec_inter, sec_union = sec_inter + i, sec_union + u
    losses["total_loss"] = total
    losses["p"] = torch.tensor(p_sum / (batch * (num_frames - 1)))
    losses["iou"] = inter.float() / union.clamp(min=1)
    if has_second:
        losses["sec_iou"] = sec_inter.float() / sec_union.clamp(min=1)
    return losses
