"""The training loop: steps, logging, checkpoints, validation, the time budget and clean stops."""
import signal
from typing import Callable, Iterator, Optional

import torch
import torch.distributed as dist

from training.logging import TrainingLog
from training.trainer import RunPaths, Trainer
from training.validation import Validator
from util.timing import Stopwatch


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


def run_training(trainer: Trainer, batches_from: Callable[[int], Iterator[dict]], run: RunPaths,
                 stop_at: Optional[int] = None, validator: Optional[Validator] = None) -> dict:
    """Train from the trainer's iteration to -i (past it to `stop_at`, or until `stop_at` before it), or with
    --minutes until the budget is spent; save every `save_every`, at the end and on SIGTERM/SIGINT; validate
    at the configured iterations (or shares of the budget) and at the end. `batches_from(iteration)` gives the
    batches from an iteration on. Returns a summary of what this process did."""
    config, budget = trainer.config, trainer.budget
    end = stop_at or (None if budget else config.schedule.iterations)  # None: until the budget is spent
    batches = batches_from(trainer.iteration)
    trainer.train_mode()
    run_watch, step_watch = Stopwatch(), Stopwatch()
    start_iteration, last_val, interrupted = trainer.iteration, None, False
    with StopFlag() as stop, TrainingLog(trainer, run.folder / "logs", end) as log:
        while not _at_end(trainer, end):
            step_watch.restart()
            batch = next(batches)
            data_seconds = step_watch.lap()
            result = trainer.step(batch)
            seconds = step_watch.total()
            trainer.train_seconds += seconds
            validate = (budget is not None and _spend(trainer, log)) or config.validates_at(trainer.iteration)
            log.step(trainer.iteration - 1, batch, result, seconds, data_seconds,
                     budget.fraction(trainer.train_seconds) if budget else None)
            last = _at_end(trainer, end)
            if trainer.iteration % config.log.log_every == 0 or last:
                log.interval_end(trainer.iteration - 1)
            if last and budget is not None and _finished(trainer, end):
                trainer.budget_spent()  # before the last validation: the best network's card records it too
            if validator is not None and (validate or (last and _finished(trainer, end))):
                last_val = _validate(validator, trainer, run, log) or last_val
            if trainer.iteration % config.log.save_every == 0 and not last:
                trainer.save(run)
            if not last and _on_any_rank(trainer, stop.raised):  # every rank agrees on `last`
                interrupted = True
                break
        finished = not interrupted and _finished(trainer, end)
        trainer.save(run, network_too=not interrupted)
    return {"iteration": trainer.iteration, "iterations_run": trainer.iteration - start_iteration,
            "minutes": run_watch.total() / 60, "last_loss": log.last_loss, "interrupted": interrupted,
            "finished": finished, "checkpoint": str(run.checkpoint), "network": str(run.network(trainer.iteration)),
            "last_val": last_val, "best_val": trainer.best_val, "train_seconds": trainer.train_seconds,
            "schedule": trainer.schedule.state_dict()}


def _at_end(trainer: Trainer, end: Optional[int]) -> bool:
    """At `end`, or with a budget, spent (by rank 0's clock, which every rank follows)."""
    spent = trainer.budget is not None and trainer.budget.spent(trainer.train_seconds)
    return spent or (end is not None and trainer.iteration >= end)


def _finished(trainer: Trainer, end: Optional[int]) -> bool:
    """The run is over (not paused at a --stop_at short of it): -i or a later --stop_at reached, or the budget
    spent."""
    if trainer.budget is not None:
        return trainer.budget.spent(trainer.train_seconds)
    return trainer.iteration >= max(trainer.config.schedule.iterations, end or 0)


def _spend(trainer: Trainer, log: TrainingLog) -> bool:
    """After a step of a budgeted run: every rank takes rank 0's training time (the one its checkpoint records),
    and the budget places the phases whose share is spent. Returns whether a validation is due."""
    trainer.train_seconds = _from_rank0(trainer, trainer.train_seconds)
    news = trainer.budget.update(trainer.iteration, trainer.train_seconds)
    for placed in news.placed:
        log.note(f"iteration {trainer.iteration}: {placed}")
    return news.validate


def _validate(validator: Validator, trainer: Trainer, run: RunPaths, log: TrainingLog) -> Optional[dict]:
    """One validation between training steps (the network goes back to training mode after it)."""
    row = validator(trainer, run)
    trainer.train_mode()
    if row is not None:
        log.validation(row)
    return row


def _from_rank0(trainer: Trainer, value: float) -> float:
    """Rank 0's value on every rank."""
    if trainer.world_size == 1:
        return value
    on_rank0 = torch.tensor([value], dtype=torch.float64, device=trainer.device)
    dist.broadcast(on_rank0, src=0)
    return on_rank0.item()


def _on_any_rank(trainer: Trainer, flag: bool) -> bool:
    """True if `flag` is true on any rank (a signal): all ranks then stop at the same iteration."""
    if trainer.world_size == 1:
        return flag
    on_any = torch.tensor(float(flag), device=trainer.device)
    dist.all_reduce(on_any, op=dist.ReduceOp.MAX)
    return on_any.item() > 0
