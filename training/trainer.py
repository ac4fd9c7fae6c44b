"""The trainer: one for every stage, one process or many under torchrun.

`Trainer` owns the network (DDP-wrapped under torchrun), Adam, the learning-rate schedule, the AMP
grad scaler and checkpoints (the loop that drives it is `training.loop`). A full checkpoint holds everything needed to continue exactly:
on the CPU with a fixed seed, a run stopped at iteration k and resumed ends with the same weights as
a run that was never stopped (the data stream is a function of seed, rank and iteration only).
"""
import json
import random
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from dataset.curriculum import SWITCH_PERCENTS
from model.checkpoint import NetworkSpec, load_weights, save_weights, write_checkpoint
from model.losses import BootstrapSchedule, stcn_loss
from model.memory import FLOAT32_EXP_LIMIT, largest_similarity
from training.budget import TimeBudget
from training.config import TrainConfig
from training.data import batches_ahead
from training.schedule import Schedule
from util.distributed import autocast
from util.fileio import InputError


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss stayed non-finite); the last good checkpoint is intact."""


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

    @property
    def summary(self) -> Path:
        """What the last train.py process of the run did (train.py writes it at its end)."""
        return self.folder / "run_summary.json"


class Trainer:
    """Network, optimiser, schedule, scaler and bookkeeping of one training run on one rank."""

    def __init__(self, config: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        self.config = config
        self.device = device
        self.rank = rank
        self.world_size = world_size
        torch.manual_seed(config.seed + rank)
        wanted = config.network
        spec = NetworkSpec(wanted.arch, wanted.similarity, wanted.backbone, wanted.cbam)
        network = spec.build(single_object=config.data.single_object, pretrained=wanted.pretrained)
        if wanted.load_network:
            load_weights(network, wanted.load_network, for_training=True)
        self.network = network.to(device)
        if wanted.channels_last:
            self.network.to(memory_format=torch.channels_last)
        self.model = (DistributedDataParallel(self.network, device_ids=[device] if device.type == "cuda" else None)
                      if world_size > 1 else self.network)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.optim.lr, betas=(0.9, 0.999),
                                          weight_decay=config.optim.weight_decay)
        # with --minutes the schedule starts empty and the budget places its phases as it is spent
        budgeted = config.schedule.minutes is not None
        self.schedule = Schedule() if budgeted else Schedule.of(config)
        self.budget = TimeBudget.of(config, self.schedule, 1 + batches_ahead(config)) if budgeted else None
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: self.schedule.lr_factor(it, config.schedule.gamma, config.schedule.warmup))
        self.use_amp = config.optim.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        optim = config.optim
        self.bootstrap = BootstrapSchedule(optim.bootstrap_start, optim.bootstrap_end, optim.bootstrap_top_p)
        self.iteration = 0
        self.nonfinite_in_a_row = 0
        self.train_seconds = 0.0  # time spent in training steps over the whole run (resumes included)
        self.best_val: Optional[float] = None  # best validation J&F so far (--val_root)
        self.last_frames: Optional[torch.Tensor] = None  # T, 3, H, W: the last batch's first sample
        self.similarity_noted = False

    def autocast(self):
        """fp16 on CUDA (with the scaler) unless --no_amp; bf16 on the CPU only with --cpu_amp."""
        return autocast(self.device, self.use_amp or (self.config.optim.cpu_amp and self.device.type == "cpu"))

    def budget_spent(self) -> None:
        """Record what a budgeted run turned out to be, in the flags that repeat it: -i, --steps, --curriculum_at
        (saved with its weights)."""
        end = self.iteration  # learning-rate steps placed past it changed nothing: left out
        switches = self.schedule.switches_until(end, len(SWITCH_PERCENTS))
        self.config = self.config.replaced(iterations=end, steps=tuple(s for s in self.schedule.lr_steps if s < end),
                                           curriculum_at=switches if self.config.data.follows_curriculum else None)

    def train_mode(self) -> None:
        self.model.train()
        freeze_batchnorm(self.model)

    def to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}

    def forward(self, batch: dict) -> tuple[dict, dict]:
        """Network outputs and losses of one batch (already on the device)."""
        gt, sec_gt = batch["gt"], None if self.config.data.single_object else batch["sec_gt"]
        first = gt[:, 0] if sec_gt is None else torch.cat([gt[:, 0], sec_gt[:, 0]], dim=1)
        selector = None if sec_gt is None else batch["selector"]
        with self.autocast():
            out = self.model(batch["rgb"], first, selector, literal=self.config.network.literal_forward)
            losses = stcn_loss(out, gt, sec_gt, selector, self.iteration, self.bootstrap)
        return out, losses

    def step(self, batch: dict) -> Optional[tuple[dict, dict]]:
        """One optimisation step; None when the loss was not finite on some rank (step skipped)."""
        batch = self.to_device(batch)
        self.last_frames = batch["rgb"][0]
        out, losses = self.forward(batch)
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
            if self.nonfinite_in_a_row >= self.config.optim.max_nonfinite:
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
        if self.config.optim.clip_grad > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.optim.clip_grad)
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
            "train_seconds": self.train_seconds,
            "best_val": self.best_val,
            "schedule": self.schedule.state_dict(),
            "budget": self.budget.state_dict() if self.budget else None,
        }

    def save(self, run: RunPaths, network_too: bool = True) -> None:
        """Write the full checkpoint (and the network alone, released layout) atomically on rank 0."""
        state = self.checkpoint_state(run)
        if state is None:
            return
        write_checkpoint(state, run.checkpoint)
        if network_too:
            card = {"iteration": self.iteration, "run_name": run.name, "train_config": self.config.to_json()}
            largest = self.largest_similarity()
            if largest is not None:
                card["largest_similarity"] = largest
            save_weights(self.network, run.network(self.iteration), card)

    @torch.no_grad()
    def largest_similarity(self) -> Optional[float]:
        """The largest similarity of the last batch's last frame to its earlier frames (shared keys only).
        Noted once when it exceeds FLOAT32_EXP_LIMIT: the authors' evaluation code would overflow with
        these weights (NaN, objects lost), this code subtracts the maximum and is unaffected."""
        if self.last_frames is None or self.network.keys_per_object:
            return None
        keys = [self.network.encode_key(frame[None]).key.flatten(2) for frame in self.last_frames]  # 1, Ck, h*w
        largest = largest_similarity(torch.cat(keys[:-1], dim=2), keys[-1], self.network.similarity)
        if largest > FLOAT32_EXP_LIMIT and not self.similarity_noted:
            self.similarity_noted = True
            print(f"note: at iteration {self.iteration} a memory similarity reaches {largest:.0f}, beyond "
                  f"{FLOAT32_EXP_LIMIT} where exp() overflows in float32. This code is unaffected; the authors' "
                  "evaluation code (a top-k softmax without the maximum subtracted) would lose objects with "
                  "these weights (README: weights and the authors' code)", flush=True)
        return largest

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
        self.train_seconds = state.get("train_seconds", 0.0)
        self.best_val = state.get("best_val")
        budgeted = state.get("config", {}).get("minutes") is not None
        if budgeted != (self.budget is not None):
            raise InputError(f"{path}: a run {'with' if budgeted else 'without'} --minutes; continue it "
                             f"{'with' if budgeted else 'without'} --minutes")
        if self.budget is not None:  # the phases a budgeted run has placed so far
            if state.get("budget") is None:
                raise InputError(f"{path}: written before a budget placed its phases by time; continue it with "
                                 f"the -i and --steps of its config.json instead of --minutes")
            self.schedule.load_state_dict(state["schedule"])
            self.budget.load_state_dict(state["budget"])
            later = self.budget.lookahead - state["budget"]["lookahead"]
            if later:
                print(f"note: --num_workers {self.config.data.num_workers} asks the loader further ahead than the "
                      f"run's first part did: its later phases come {later} iterations later than an unstopped "
                      f"run's")
        rng = state["rng"]
        if len(rng) == self.world_size:
            set_rng_state(rng[self.rank])
        return state["run_name"]


RUN_TIME_FORMAT = "%b%d_%H.%M.%S"


def new_run(config: TrainConfig) -> RunPaths:
    """`<save_dir>/<Mon DD_HH.MM.SS>_<id>`, the original code's naming."""
    name = f"{datetime.now().strftime(RUN_TIME_FORMAT)}_{config.run_id}"
    return RunPaths(config.log.save_dir / name, name)


def latest_checkpoint(save_dir: Path, run_id: str, stage: int) -> Optional[Path]:
    """The full checkpoint of the newest run of `run_id` at `stage` under `save_dir` (`--resume auto`): the most
    recently written `<name>_checkpoint.pth` of a folder `<Mon DD_HH.MM.SS>_<run_id>` whose config.json names
    this stage; None when there is none. Checkpoints are renamed into place whole: one found here is complete."""
    name = re.compile(rf"[A-Z][a-z]{{2}}\d{{2}}_\d{{2}}\.\d{{2}}\.\d{{2}}_{re.escape(run_id)}")
    found = []
    for folder in save_dir.iterdir() if save_dir.is_dir() else []:
        checkpoint = RunPaths(folder, folder.name).checkpoint
        if not (name.fullmatch(folder.name) and checkpoint.is_file()):
            continue
        try:
            if json.loads((folder / "config.json").read_text())["stage"] != stage:
                continue  # another stage's run under the same id
        except (OSError, ValueError, KeyError):
            continue
        found.append((checkpoint.stat().st_mtime, checkpoint))
    return max(found)[1] if found else None


def parameter_checksum(network: nn.Module) -> float:
    """A float that differs when any weight differs: compares ranks after DDP steps."""
    return float(sum(p.detach().double().sum() * (i + 1) for i, p in enumerate(network.parameters())))
