"""The training loop: steps, interval-averaged logging, checkpoints, validation and clean stops."""
import math
import signal
import time
from dataclasses import replace
from typing import Callable, Iterator, Optional

import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from training.budget import BudgetPlanner
from training.config import TrainConfig
from training.logging import IntervalAverages, git_commit, image_grid
from training.trainer import RunPaths, Trainer
from training.validation import Validator


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


def run_training(trainer: Trainer, batches_for: Callable[[TrainConfig, int], Iterator[dict]], run: RunPaths,
                 stop_at: Optional[int] = None, validator: Optional[Validator] = None) -> dict:
    """Step until the configured iterations (or `stop_at`); log averages every `log_every` on rank 0;
    save every `save_every`, at the end and on SIGTERM/SIGINT; validate at the configured interval and at
    the end (with a validator). With `--minutes` the total is planned as training goes (training/budget.py).
    `batches_for(config, iteration)` gives the batches from an iteration on. Returns a summary."""
    config = trainer.config
    budget = _budget(trainer)
    batches = batches_for(_loader_config(config, budget), trainer.iteration)
    end = _first_end(trainer, budget, stop_at)
    writer = SummaryWriter(str(run.folder / "logs")) if trainer.rank == 0 else None
    if writer is not None and trainer.iteration == 0:
        writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in config.to_json().items()))
        writer.add_text("git_commit", git_commit())
    averages = IntervalAverages(device=trainer.device, world_size=trainer.world_size)
    trainer.train_mode()
    started, start_iteration, last_loss, last_val = time.perf_counter(), trainer.iteration, math.nan, None
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
            trainer.train_seconds += time.perf_counter() - tick
            if result is not None:
                out, losses = result
                averages.add({**losses, "seconds_per_iteration": time.perf_counter() - tick,
                              "data_seconds": data_seconds})
                last_loss = losses["total_loss"].item()
                progress.set_postfix(loss=f"{last_loss:.4f}", p=f"{losses['p'].item():.2f}")
                if writer is not None and iteration % config.log_image_every == 0:
                    writer.add_image("train/frames_prediction_truth", image_grid(batch, out), iteration)
            if budget is not None:
                end, now_final = _follow_budget(budget, trainer, end, stop_at, progress)
                if now_final:
                    batches = batches_for(trainer.config, trainer.iteration)  # the same samples, final curriculum
            if trainer.iteration % config.log_every == 0 or trainer.iteration == end:
                means = averages.averages()  # every rank, at the same iterations
                if writer is not None:
                    for key, value in means.items():
                        writer.add_scalar(f"train/{key}", value, iteration)
                    writer.add_scalar("train/lr", trainer.scheduler.get_last_lr()[0], iteration)
            progress.update()
            paused = stop_at is not None and end == stop_at < trainer.config.iterations  # to be resumed
            if validator is not None and ((trainer.iteration == end and not paused) or
                                          trainer.config.validates_at(trainer.iteration)):
                last_val = _validate(validator, trainer, run, writer, progress) or last_val
            if trainer.iteration % config.save_every == 0 and trainer.iteration < end:
                trainer.save(run)
            if _on_any_rank(trainer, stop.raised):
                interrupted = True
                break
        trainer.save(run, network_too=not interrupted)
    if writer is not None:
        writer.close()
    minutes = (time.perf_counter() - started) / 60
    return {"iteration": trainer.iteration, "iterations_run": trainer.iteration - start_iteration,
            "minutes": minutes, "last_loss": last_loss, "interrupted": interrupted,
            "checkpoint": str(run.checkpoint), "network": str(run.network(trainer.iteration)),
            "last_val": last_val, "best_val": trainer.best_val, "planned_iterations": trainer.config.iterations,
            "steps": list(budget.steps_for(trainer.config.iterations) if budget else trainer.config.steps),
            "plan_final_at": trainer.plan_final_at}


def _budget(trainer: Trainer) -> Optional[BudgetPlanner]:
    """With --minutes: the run's planner (a run resumed with its final plan follows that plan)."""
    config = trainer.config
    if not config.minutes:
        return None
    budget = BudgetPlanner(config.minutes * 60, config.iterations, config.steps, trainer.iteration)
    if trainer.plan_frozen:
        budget.adopt(config.iterations, trainer.plan_final_at)
    return budget


def _first_end(trainer: Trainer, budget: Optional[BudgetPlanner], stop_at: Optional[int]) -> int:
    """The iteration the run ends at as it starts: `stop_at` (past -i, the schedule's last phase goes on to it)
    or -i; a budgeted run resumed with its final plan ends at the plan (or `stop_at` before it), or, resumed
    past its plan with budget left, goes on from the next iteration."""
    end = stop_at or trainer.config.iterations
    if budget is not None and budget.planned is not None:  # resumed with its final plan
        end = min(end, budget.planned)
        if _goes_on(budget, trainer.iteration, budget.spent(trainer.train_seconds), stop_at):
            end = trainer.iteration + 1
    return end


def _goes_on(budget: BudgetPlanner, iteration: int, spent: bool, stop_at: Optional[int]) -> bool:
    """Whether a run at `iteration`, at or past its plan, takes one more step in the schedule's last phase:
    while the budget is not spent, and up to `stop_at`."""
    return (not spent and budget.planned is not None and iteration >= budget.planned
            and (stop_at is None or iteration < stop_at))


def _validate(validator: Validator, trainer: Trainer, run: RunPaths, writer: Optional[SummaryWriter],
              progress: tqdm) -> Optional[dict]:
    """One validation between training steps (the network goes back to training mode after it)."""
    row = validator(trainer, run)
    trainer.train_mode()
    if row is not None:
        progress.write(f"iteration {row['iteration']}: validation J&F {row['jf']:.4f} (J {row['j']:.4f}, "
                       f"F {row['f']:.4f}; best {trainer.best_val:.4f})")
        if writer is not None:
            for key, name in (("jf", "J&F"), ("j", "J"), ("f", "F")):
                writer.add_scalar(f"val/{name}", row[key], row["iteration"])
    return row


def _follow_budget(budget: BudgetPlanner, trainer: Trainer, end: int, stop_at: Optional[int],
                   progress: tqdm) -> tuple[int, bool]:
    """Re-plan the run's length from the time its steps took (all ranks take rank 0's plan); end it at the
    budget plus its allowance if the plan is not reached by then, or go on past the plan, in the schedule's
    last phase, while the budget is not spent. Until the plan is final the run has no learning-rate step, as
    its curriculum stays in its first phase. Returns the new end and whether the plan has just become final."""
    before = (budget.planned, budget.frozen)
    budget.observe(trainer.iteration, trainer.train_seconds)
    if trainer.world_size > 1 and not before[1]:  # agreed final before this step: no broadcast needed
        budget.adopt(*_rank0_plan(budget, trainer))
    if (budget.planned, budget.frozen) != before:
        trainer.replan(budget.planned, budget.steps_for(budget.planned) if budget.frozen else ())
        trainer.plan_final_at = budget.frozen_at
        end = min(budget.planned, stop_at) if stop_at else budget.planned
        progress.total = end
        progress.write(f"iteration {trainer.iteration}: {budget.per_iteration:.2f} s per iteration -> "
                       f"{budget.planned} iterations for {budget.seconds / 60:g} minutes"
                       f"{' (final)' if budget.frozen else ''}")
    spent, out_of_time = (value > 0 for value in _from_rank0(trainer, budget.spent(trainer.train_seconds),
                                                             budget.out_of_time(trainer.train_seconds)))
    if out_of_time and trainer.iteration < end:
        progress.write(f"iteration {trainer.iteration}: the {budget.seconds / 60:g}-minute budget is spent before "
                       f"the planned {end} iterations: stopping")
        end = trainer.iteration
    elif trainer.iteration == end and _goes_on(budget, end, spent, stop_at):
        if end == budget.planned:
            progress.write(f"iteration {end}: the plan is reached with {budget.seconds - trainer.train_seconds:.1f} s "
                           f"of the budget left: going on in the schedule's last phase until it is spent")
        end += 1
        progress.total = end
    return end, budget.frozen and not before[1]


UNPLANNED = 10**15  # the total iterations the loader is given while a budget's plan is not final


def _loader_config(config: TrainConfig, budget: Optional[BudgetPlanner]) -> TrainConfig:
    """What the loader is built with. While a budget's plan is not final the curriculum stays in its first
    phase (the plan is final at 8% of the run, before its first switch at 10%: training/budget.py), and the
    loader is built again once, with the final plan: each rebuild forks new workers, and the step after a
    fork is seconds slower."""
    return replace(config, iterations=UNPLANNED) if budget is not None and not budget.frozen else config


def _rank0_plan(budget: BudgetPlanner, trainer: Trainer) -> tuple[Optional[int], Optional[int]]:
    """Rank 0's planned total and the iteration it became final at (ranks time their steps differently;
    they must agree on the total, and rebuild their loaders at the same iteration)."""
    plan = _from_rank0(trainer, *(-1 if value is None else value for value in (budget.planned, budget.frozen_at)))
    return tuple(None if value < 0 else int(value) for value in plan)


def _from_rank0(trainer: Trainer, *values: float) -> tuple[float, ...]:
    """Rank 0's values on every rank: the budget is kept by rank 0's clock (the one its checkpoint records;
    a rank waiting in DDP's all-reduce for rank 0's logging times more), as its plan is."""
    if trainer.world_size == 1:
        return values
    on_rank0 = torch.tensor(values, dtype=torch.float64, device=trainer.device)
    dist.broadcast(on_rank0, src=0)
    return tuple(on_rank0.tolist())


def _on_any_rank(trainer: Trainer, flag: bool) -> bool:
    """True if `flag` is true on any rank (a signal): all ranks then stop at the same iteration."""
    if trainer.world_size == 1:
        return flag
    on_any = torch.tensor(float(flag), device=trainer.device)
    dist.all_reduce(on_any, op=dist.ReduceOp.MAX)
    return on_any.item() > 0
