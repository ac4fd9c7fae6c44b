"""Train STCN: one stage of the paper per run, on one process or many under torchrun.

  python train.py --stage 0 --id s0 --static_root ../static
  torchrun --nproc_per_node 2 train.py --stage 3 --id s03 --load_network saves/<run>/<run>_300000.pth
"""
import json
import sys
from dataclasses import replace
from typing import Optional

import torch
from torch.utils.data import DataLoader, Dataset

from dataset.checks import check_roots
from dataset.curriculum import set_curriculum
from dataset.sampling import SeededSamples, TrainingSampler
from dataset.static_dataset import StaticDataset
from dataset.synthetic_online import SyntheticStaticDataset, SyntheticVideoDataset
from dataset.vos_dataset import bl30k_train, main_training_set
from model.checkpoint import read_checkpoint, resolve_spec
from model.trainer import RunPaths, Trainer, TrainingError, new_run, parameter_checksum, run_training
from util.config import TrainConfig, run_cli, training_parser
from util.distributed import cleanup, init_distributed, pick_device, rank_and_world
from util.fileio import InputError, atomic_path


def build_dataset(config: TrainConfig) -> Dataset:
    """The stage's training set, after checking that every root it needs is there (or, with --synthetic,
    fresh synthetic samples: one-object images for stage 0, videos otherwise)."""
    if config.synthetic:
        height, width, frames = config.synthetic
        if config.data == "static":
            return SyntheticStaticDataset((height, width), config.crop_size, pool=config.synthetic_pool)
        return SyntheticVideoDataset((height, width), frames, crop_size=config.crop_size, pool=config.synthetic_pool)
    check_roots(config.stage, config.static_root, config.bl_root, config.yv_root, config.davis_root)
    if config.data == "static":
        return StaticDataset(config.static_root, config.crop_size)
    if config.data == "bl30k":
        return bl30k_train(config.bl_root, config.crop_size)
    return main_training_set(config.davis_root, config.yv_root, config.crop_size)


def weights_structure(config: TrainConfig, arch_flag: Optional[str], similarity_flag: Optional[str]) -> TrainConfig:
    """What the weights we start from, if any, decide: architecture, key encoder variant and CBAM (no flag
    needed), and without --similarity the similarity they were trained with. A contradicting --arch is an
    error."""
    source = config.resume or config.load_network
    if source is None:
        return config
    found = resolve_spec(source, read_checkpoint(source))  # the similarity as recorded (no flag to contradict)
    if arch_flag and found.arch != arch_flag:
        raise InputError(f"{source}: holds an {found.arch.upper()} network; --arch {arch_flag} cannot load it "
                         f"(pass --arch {found.arch} or no --arch)")
    if found.backbone != config.backbone:
        print(f"{source} holds a {found.backbone} key encoder: using it (not --backbone {config.backbone})")
    if found.cbam != config.cbam:
        print(f"{source} was trained {'with' if found.cbam else 'without'} CBAM: keeping that")
    return replace(config, arch=found.arch, backbone=found.backbone, cbam=found.cbam,
                   similarity=similarity_flag or found.similarity)


def main() -> int:
    args = training_parser().parse_args()
    config = weights_structure(TrainConfig.from_args(args), args.arch, args.similarity)
    rank, world = rank_and_world()
    if config.batch_size % world:
        raise InputError(f"--batch_size {config.batch_size} (total over all processes) does not divide "
                         f"among {world} processes")
    device = pick_device(config.device)
    init_distributed(device)
    torch.backends.cudnn.benchmark = config.benchmark
    dataset = build_dataset(config)
    trainer = Trainer(config, device, rank, world)
    if config.resume:
        name = trainer.load(config.resume)
        run = RunPaths(config.resume.parent, name)
    else:
        run = new_run(config)
    per_rank = config.batch_size // world
    bl30k = config.data == "bl30k"
    curriculum = None if config.data == "static" else (
        lambda data, it: set_curriculum(data, it, config.iterations, bl30k))
    loader = DataLoader(
        SeededSamples(dataset, curriculum), batch_size=per_rank, drop_last=True,
        sampler=TrainingSampler(len(dataset), per_rank, config.seed, rank, world, trainer.iteration),
        num_workers=config.num_workers, pin_memory=device.type == "cuda",
    )
    if rank == 0:
        run.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(run.folder / "config.json") as tmp:
            tmp.write_text(json.dumps(config.to_json(), indent=2))
        print(f"run {run.name} in {run.folder}: {len(dataset)} samples, {world} process(es) x batch {per_rank}, "
              f"{'continuing from iteration %d' % trainer.iteration if config.resume else 'from scratch'}")
        print(json.dumps(config.to_json(), indent=2))
    try:
        summary = run_training(trainer, iter(loader), run, args.stop_at)  # the sampler is endless
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    checksum = parameter_checksum(trainer.network)
    print(f"rank {rank}: parameter checksum {checksum:.10e}", flush=True)
    if rank == 0:
        state = "stopped (resume with --resume)" if summary["interrupted"] else "done"
        print(f"{state} at iteration {summary['iteration']} ({summary['iterations_run']} this run) in "
              f"{summary['minutes']:.1f} min; last loss {summary['last_loss']:.4f}; checkpoint {summary['checkpoint']}")
    cleanup()
    return 0


if __name__ == "__main__":
    run_cli(main)
