"""Training: one trainer for every stage, one process or many under torchrun.

`Trainer` owns the network (DDP-wrapped under torchrun), Adam, the learning-rate schedule, the AMP
grad scaler, checkpoints and logging. A full checkpoint holds everything needed to continue exactly:
on the CPU with a fixed seed, a run stopped at iteration k and resumed ends with the same weights as
a run that was never stopped (the data stream is a function of seed, rank and iteration only).
"""
import math
import re
import random
import signal
import subprocess
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid
from tqdm import tqdm

from model.checkpoint import NetworkSpec, load_weights, save_weights, write_checkpoint
from model.losses import BootstrapSchedule, stcn_loss
from util.config import TrainConfig
from util.image import IMAGENET_MEAN, IMAGENET_STD


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss stayed non-finite); the last good checkpoint is intact."""


def lr_factor(iteration: int, steps: tuple[int, ...], gamma: float, warmup: int = 0) -> float:
    """Step decay by `gamma` at each of `steps`, after an optional linear warm-up."""
    decay = gamma ** sum(iteration >= s for s in steps)
    return decay * min(1.0, (iteration + 1) / warmup) if warmup else decay


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm in eval mode: running statistics stay those of initialisation (seed F.1);
    their affine parameters are still trained."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def rng_state() -> dict:
    """This process's random states, in a form torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between iterations, saves and leaves."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = {}

    def __enter__(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.raised = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class RunPaths:
    """Where a run writes: `<save_dir>/<name>/<name>_<iteration>.pth`, `<name>_checkpoint.pth`, logs."""

    folder: Path
    name: str

    def network(self, iteration: int) -> Path:
        return self.folder / f"{self.name}_{iteration}.pth"

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"{self.name}_checkpoint.pth"


class Trainer:
    """Network, optimiser, schedule, scaler and bookkeeping of one training run on one rank."""

    def __init__(self, config: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        self.config = config
        self.device = device
        self.rank = rank
        self.world_size = world_size
        torch.manual_seed(config.seed + rank)
        spec = NetworkSpec(config.arch, config.similarity, config.backbone, config.cbam)
        network = spec.build(single_object=config.single_object, pretrained=config.pretrained)
        if config.load_network:
            load_weights(network, config.load_network, for_training=True)
        self.network = network.to(device)
        self.model = (DistributedDataParallel(self.network, device_ids=[device] if device.type == "cuda" else None)
                      if world_size > 1 else self.network)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.lr, betas=(0.9, 0.999),
                                          weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(it, config.steps, config.gamma, config.warmup))
        self.use_amp = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.bootstrap = BootstrapSchedule(config.bootstrap_start, config.bootstrap_end, config.bootstrap_top_p)
        self.iteration = 0
        self.nonfinite_in_a_row = 0

    def autocast(self):
        if self.use_amp:
            return torch.autocast("cuda", dtype=torch.float16)
        if self.config.cpu_amp and self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def train_mode(self) -> None:
        self.model.train()
        freeze_batchnorm(self.model)

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}

    def forward(self, batch: dict) -> tuple[dict, dict]:
        """Network outputs and losses of one batch (already on the device)."""
        gt, sec_gt = batch["gt"], None if self.config.single_object else batch["sec_gt"]
        first = gt[:, 0] if sec_gt is None else torch.cat([gt[:, 0], sec_gt[:, 0]], dim=1)
        selector = None if sec_gt is None else batch["selector"]
        with self.autocast():
            out = self.model(batch["rgb"], first, selector)
            losses = stcn_loss(out, gt, sec_gt, selector, self.iteration, self.bootstrap)
        return out, losses

    def step(self, batch: dict) -> Optional[tuple[dict, dict]]:
        """One optimisation step; None when the loss was not finite on some rank (step skipped)."""
        out, losses = self.forward(self.to_device(batch))
        return (out, losses) if self.optimise(losses["total_loss"]) else None

    def optimise(self, total: torch.Tensor) -> bool:
        """Backward, (clip,) step and advance the schedule; False if the loss was not finite on some rank,
        in which case the step is skipped (several in a row raise TrainingError)."""
        finite = torch.tensor(float(torch.isfinite(total).item()), device=self.device)
        if self.world_size > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # every rank skips together, or DDP would hang
        self.optimizer.zero_grad(set_to_none=True)
        if finite.item() < 1:
            self.nonfinite_in_a_row += 1
            warnings.warn(f"iteration {self.iteration}: non-finite loss, step skipped "
                          f"({self.nonfinite_in_a_row} in a row)")
            if self.nonfinite_in_a_row >= self.config.max_nonfinite:
                raise TrainingError(f"the loss was not finite for {self.nonfinite_in_a_row} iterations in a row "
                                    f"(up to iteration {self.iteration}); stopping. The last good checkpoint is "
                                    f"intact: resume from it with a lower --lr or with --clip_grad")
            self.iteration += 1
            with warnings.catch_warnings():  # the schedule follows iterations, stepped or skipped
                warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
                self.scheduler.step()
            return False
        self.nonfinite_in_a_row = 0
        self.scaler.scale(total).backward()
        if self.config.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        return True

    # ---- checkpoints -------------------------------------------------------------------------------
    def checkpoint_state(self, run: RunPaths) -> Optional[dict]:
        """The full state on rank 0 (RNG states of every rank gathered); None on other ranks."""
        states = [rng_state()]
        if self.world_size > 1:
            states = [None] * self.world_size
            dist.all_gather_object(states, rng_state())
        if self.rank != 0:
            return None
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iteration,
            "rng": states,
            "run_name": run.name,
            "world_size": self.world_size,
            "config": self.config.to_json(),
        }

    def save(self, run: RunPaths, network_too: bool = True) -> None:
        """Write the full checkpoint (and the network alone, released layout) atomically on rank 0."""
        state = self.checkpoint_state(run)
        if state is None:
            return
        write_checkpoint(state, run.checkpoint)
        if network_too:
            card = {"iteration": self.iteration, "run_name": run.name, "train_config": self.config.to_json()}
            save_weights(self.network, run.network(self.iteration), card)

    def load(self, path: Path) -> str:
        """Continue from a full checkpoint; returns its run name."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "optimizer" not in state:
            raise TrainingError(f"{path}: not a full training checkpoint (use --load_network for weights only)")
        load_weights(self.network, state["network"], for_training=True, name=str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration = state["iteration"]
        rng = state["rng"]
        if len(rng) == self.world_size:
            set_rng_state(rng[self.rank])
        return state["run_name"]


def denormalise(rgb: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=rgb.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=rgb.device).view(3, 1, 1)
    return (rgb * std + mean).clamp(0, 1)


def image_grid(batch: dict, out: dict) -> torch.Tensor:
    """Rows: frames, predicted first-object masks, ground truth, for the first sample of the batch."""
    frames = denormalise(batch["rgb"][0].float().cpu())  # T, 3, H, W
    num_frames = frames.shape[0]
    gt = batch["gt"][0].float().cpu().expand(-1, 3, -1, -1)
    pred = [batch["gt"][0, 0].float().cpu()] + [out[f"mask_{t}"][0, :1].float().detach().cpu()
                                                for t in range(1, num_frames)]
    pred = torch.stack(pred).expand(-1, 3, -1, -1)
    return make_grid(torch.cat([frames, pred, gt]), nrow=num_frames)


def run_training(trainer: Trainer, batches: Iterator[dict], run: RunPaths, stop_at: Optional[int] = None) -> dict:
    """The loop: steps until the configured iterations (or `stop_at`), logging on rank 0, saving every
    `save_every`, at the end and on SIGTERM/SIGINT. Returns a summary."""
    config = trainer.config
    end = min(config.iterations, stop_at) if stop_at else config.iterations
    writer = SummaryWriter(str(run.folder / "logs")) if trainer.rank == 0 else None
    if writer is not None and trainer.iteration == 0:
        writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.to_json().items()))
        writer.add_text("git_commit", git_commit())
    trainer.train_mode()
    started, start_iteration, last_loss = time.perf_counter(), trainer.iteration, math.nan
    progress = tqdm(total=end, initial=trainer.iteration, desc=f"stage {config.stage}", unit="it",
                    disable=trainer.rank != 0, dynamic_ncols=True)
    interrupted = False
    with StopFlag() as stop, progress:
        while trainer.iteration < end:
            tick = time.perf_counter()
            batch = next(batches)
            data_seconds = time.perf_counter() - tick
            iteration = trainer.iteration
            result = trainer.step(batch)
            if result is not None:
                out, losses = result
                last_loss = losses["total_loss"].item()
                progress.set_postfix(loss=f"{last_loss:.4f}", p=f"{losses['p'].item():.2f}")
                if writer is not None and iteration % config.log_every == 0:
                    for key, value in losses.items():
                        writer.add_scalar(f"train/{key}", float(value.detach()), iteration)
                    writer.add_scalar("train/lr", trainer.scheduler.get_last_lr()[0], iteration)
                    writer.add_scalar("train/seconds_per_iteration", time.perf_counter() - tick, iteration)
                    writer.add_scalar("train/data_seconds", data_seconds, iteration)
                if writer is not None and iteration % config.log_image_every == 0:
                    writer.add_image("train/frames_prediction_truth", image_grid(batch, out), iteration)
            progress.update()
            if trainer.iteration % config.save_every == 0 and trainer.iteration < end:
                trainer.save(run)
            if _agreed_stop(stop.raised, trainer):
                interrupted = True
                break
        trainer.save(run, network_too=not interrupted)
    if writer is not None:
        writer.close()
    minutes = (time.perf_counter() - started) / 60
    return {"iteration": trainer.iteration, "iterations_run": trainer.iteration - start_iteration,
            "minutes": minutes, "last_loss": last_loss, "interrupted": interrupted,
            "checkpoint": str(run.checkpoint), "network": str(run.network(trainer.iteration))}


def _agreed_stop(raised: bool, trainer: Trainer) -> bool:
    """All ranks stop at the same iteration if any of them was signalled."""
    if trainer.world_size == 1:
        return raised
    flag = torch.tensor(float(raised), device=trainer.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.item() > 0


def new_run(config: TrainConfig) -> RunPaths:
    """`<save_dir>/<Mon DD_HH.MM.SS>_<id>`, the original code's naming."""
    name = f"{datetime.now().strftime('%b%d_%H.%M.%S')}_{config.run_id}"
    return RunPaths(config.save_dir / name, name)


def parameter_checksum(network: nn.Module) -> float:
    """A float that differs when any weight differs: compares ranks after DDP steps."""
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(network.parameters())))
