"""A stage's training data: the datasets it reads (checked first) and the endless, seeded loader."""
from typing import Callable

from torch.utils.data import DataLoader, Dataset

from dataset.checks import check_roots
from dataset.curriculum import set_curriculum, set_fixed_max_jump
from dataset.sampling import SeededSamples, TrainingSampler
from dataset.static_dataset import StaticDataset
from dataset.synthetic_online import SyntheticStaticDataset, SyntheticVideoDataset
from dataset.vos_dataset import bl30k_train, main_training_set
from training.config import STAGES, TrainConfig


def build_dataset(config: TrainConfig) -> Dataset:
    """The stage's training set, after checking that every root it needs is there (or, with --synthetic,
    fresh synthetic samples: one-object images for stage 0, videos otherwise)."""
    data = config.data
    if data.synthetic:
        height, width, frames = data.synthetic
        if data.kind == "static":
            return SyntheticStaticDataset((height, width), data.crop_size, pool=data.synthetic_pool)
        return SyntheticVideoDataset((height, width), frames, crop_size=data.crop_size, pool=data.synthetic_pool,
                                     clip=data.clip)
    check_roots(data.kind, f"stage {config.stage} ({STAGES[config.stage].name})", data.static_root, data.bl_root,
                data.yv_root, data.davis_root, data.yv_subset)
    if data.kind == "static":
        return StaticDataset(data.static_root, data.crop_size)
    if data.kind == "bl30k":
        return bl30k_train(data.bl_root, data.crop_size, data.clip)
    return main_training_set(data.davis_root, data.yv_root, data.crop_size, data.yv_subset, data.clip)


PREFETCH_FACTOR = 2  # batches each loader worker prepares ahead (DataLoader's default)


def batches_ahead(config: TrainConfig) -> int:
    """How many batches past the one being trained the loader may already have asked its sampler for: a
    schedule change that affects samples applies no earlier than that (training/budget.py)."""
    return config.data.num_workers * PREFETCH_FACTOR


def training_loader(dataset: Dataset, config: TrainConfig, start_iteration: int, rank: int, world_size: int,
                    pin_memory: bool, curriculum_phase: Callable[[int], int] = lambda iteration: 0) -> DataLoader:
    """Batches of this rank's share, from `start_iteration` on, forever: the samples are a function of the
    seed, the rank and the iteration only (so a resumed run sees what it would have seen); video stages take
    the frame-gap curriculum's phase of each sample's iteration from `curriculum_phase` (a run's
    Schedule.curriculum_phase; --max_jump fixes the gap instead)."""
    per_rank = config.optim.batch_size // world_size
    if config.data.max_jump:
        set_fixed_max_jump(dataset, config.data.max_jump)
    sampler = TrainingSampler(len(dataset), per_rank, config.seed, rank, world_size, start_iteration,
                              phase_at=curriculum_phase)
    return DataLoader(
        SeededSamples(dataset, set_curriculum if config.data.follows_curriculum else None), batch_size=per_rank,
        drop_last=True, sampler=sampler, num_workers=config.data.num_workers, pin_memory=pin_memory,
        prefetch_factor=PREFETCH_FACTOR if config.data.num_workers else None,
    )
