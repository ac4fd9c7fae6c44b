"""Train STCN: one stage of the paper per run, on one process or many under torchrun.

  python train.py --stage 0 --id s0 --static_root ../static
  torchrun --nproc_per_node 2 train.py --stage 3 --id s03 --load_network saves/<run>/<run>_300000.pth
"""
import json
import os
import sys

import torch

from training.config import TrainConfig, adopt_weights_structure, training_parser
from training.data import build_dataset, training_loader
from training.loop import run_training
from training.trainer import RunPaths, Trainer, TrainingError, latest_checkpoint, new_run, parameter_checksum
from training.validation import Validator, best_weights_path, history_path
from util.cli import run_cli
from util.distributed import (broadcast_from_rank0, check_same_on_every_rank, cleanup, init_distributed, pick_device,
                               rank_and_world)
from util.fileio import InputError, atomic_path, remove_stale_temporaries

AUTO = "auto"


def write_summary(run: RunPaths, summary: dict, stopped: bool) -> None:
    """`<run>/run_summary.json`: what this process did, for scripts that run train.py (no output parsing)."""
    validated = summary["best_val"] is not None
    record = {**summary, "run": run.name, "state": "stopped" if stopped else "done",
              "best_network": str(best_weights_path(run)) if validated else None,
              "validation_history": str(history_path(run)) if validated else None}
    with atomic_path(run.summary) as tmp:
        tmp.write_text(json.dumps(record, indent=2))


def budget_line(trainer: Trainer, summary: dict) -> str:
    """How a budgeted run went: spent in how many iterations and the flags that repeat it, or how far it got."""
    minutes = trainer.config.schedule.minutes
    if not summary["finished"]:
        return (f"{minutes:g}-minute budget: {100 * trainer.budget.fraction(trainer.train_seconds):.0f}% spent at "
                f"iteration {trainer.iteration}; --resume continues it")
    return (f"{minutes:g}-minute budget spent in {trainer.iteration} iterations; its schedule came where its "
            f"share of the time was spent: repeat exactly with {' '.join(trainer.config.schedule_flags())}")


def resolve_auto_resume(config: TrainConfig) -> tuple[TrainConfig, str]:
    """`--resume auto`: the newest checkpoint of this --id and --stage under --save_dir, or a new run (rank 0
    decides for all); returns the configuration to run and what was decided."""
    found = broadcast_from_rank0(latest_checkpoint(config.log.save_dir, config.run_id, config.stage)
                                 if rank_and_world()[0] == 0 else None)
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    after = f" (torchrun restart {restart})" if restart else ""
    if found is None:
        return config.replaced(resume=None), (f"--resume auto: no checkpoint of --id {config.run_id} at stage "
                                              f"{config.stage} under {config.log.save_dir}: a new run{after}")
    return config.replaced(resume=found), f"--resume auto: resuming from {found}{after}"


def main() -> int:
    args = training_parser().parse_args()
    config = TrainConfig.from_args(args)
    rank, world = rank_and_world()
    if config.optim.batch_size % world:
        raise InputError(f"--batch_size {config.optim.batch_size} (total over all processes) does not divide "
                         f"among {world} processes")
    device = pick_device(config.device)
    init_distributed(device)
    auto_note = None
    if str(config.resume) == AUTO:
        config, auto_note = resolve_auto_resume(config)
    config = adopt_weights_structure(config, args.arch, args.similarity)
    torch.backends.cudnn.benchmark = config.benchmark
    dataset = build_dataset(config)
    validator = Validator(config.log.val_root) if config.log.val_root else None
    trainer = Trainer(config, device, rank, world)
    run = RunPaths(config.resume.parent, trainer.load(config.resume)) if config.resume else new_run(config)
    check_same_on_every_rank(trainer.iteration, "iteration to start from", device)
    if config.resume and args.stop_at is not None and args.stop_at <= trainer.iteration:
        raise InputError(f"--stop_at {args.stop_at}: {config.resume} is already at iteration {trainer.iteration}; "
                         f"continue without --stop_at or with a later one")

    def batches_from(start_iteration: int):  # endless: the sampler never ends
        return iter(training_loader(dataset, config, start_iteration, rank, world, device.type == "cuda",
                                    trainer.schedule.curriculum_phase))

    if rank == 0:
        if auto_note:
            print(auto_note)
        run.folder.mkdir(parents=True, exist_ok=True)
        for left in remove_stale_temporaries(run.folder):
            print(f"removed {left.name}: a file a killed process was writing")
        with atomic_path(run.folder / "config.json") as tmp:
            tmp.write_text(json.dumps(config.to_json(), indent=2))
        print(f"run {run.name} in {run.folder}: {len(dataset)} samples, {world} process(es) x batch "
              f"{config.optim.batch_size // world}, "
              f"{'continuing from iteration %d' % trainer.iteration if config.resume else 'from scratch'}")
        print(f"configuration: {run.folder / 'config.json'}")
    try:
        summary = run_training(trainer, batches_from, run, args.stop_at, validator)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(f"rank {rank}: parameter checksum {parameter_checksum(trainer.network):.10e}", flush=True)
    if rank == 0:
        stopped = not summary["finished"]  # a checkpoint to continue from, not the end of the run
        state = "stopped (resume with --resume)" if stopped else "done"
        print(f"{state} at iteration {summary['iteration']} ({summary['iterations_run']} this run) in "
              f"{summary['minutes']:.1f} min; last loss {summary['last_loss']:.4f}; checkpoint {summary['checkpoint']}")
        if config.schedule.minutes:
            print(budget_line(trainer, summary))
        if summary["best_val"] is not None:
            print(f"validation J&F: best {summary['best_val']:.4f} ({best_weights_path(run)}); "
                  f"history in {history_path(run)}")
        write_summary(run, summary, stopped)
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
