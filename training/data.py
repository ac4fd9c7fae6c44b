"""A stage's training data: the datasets it reads (checked first) and the endless, seeded loader."""
from typing import Optional

from torch.utils.data import DataLoader, Dataset

from dataset.checks import check_roots
from dataset.curriculum import first_switch, set_curriculum, set_fixed_max_jump
from dataset.sampling import SeededSamples, TrainingSampler
from dataset.static_dataset import StaticDataset
from dataset.synthetic_online import SyntheticStaticDataset, SyntheticVideoDataset
from dataset.vos_dataset import bl30k_train, main_training_set
from training.config import STAGES, TrainConfig


def build_dataset(config: TrainConfig) -> Dataset:
    """The stage's training set, after checking that every root it needs is there (or, with --synthetic,
    fresh synthetic samples: one-object images for stage 0, videos otherwise)."""
    if config.synthetic:
        height, width, frames = config.synthetic
        if config.data == "static":
            return SyntheticStaticDataset((height, width), config.crop_size, pool=config.synthetic_pool)
        return SyntheticVideoDataset((height, width), frames, crop_size=config.crop_size, pool=config.synthetic_pool,
                                     clip=config.clip)
    check_roots(config.data, f"stage {config.stage} ({STAGES[config.stage].name})", config.static_root,
                config.bl_root, config.yv_root, config.davis_root, config.yv_subset)
    if config.data == "static":
        return StaticDataset(config.static_root, config.crop_size)
    if config.data == "bl30k":
        return bl30k_train(config.bl_root, config.crop_size, config.clip)
    return main_training_set(config.davis_root, config.yv_root, config.crop_size, config.yv_subset, config.clip)


def training_loader(dataset: Dataset, config: TrainConfig, start_iteration: int, rank: int, world_size: int,
                    pin_memory: bool) -> DataLoader:
    """Batches of this rank's share, from `start_iteration` on, forever: the samples are a function of
    the seed, the rank and the iteration only (so a resumed run sees what it would have seen), and the
    frame-gap curriculum follows the iteration (video stages; --max_jump fixes the gap instead)."""
    per_rank = config.batch_size // world_size
    bl30k = config.data == "bl30k"
    if config.max_jump:
        set_fixed_max_jump(dataset, config.max_jump)
    curriculum = (lambda data, iteration: set_curriculum(data, iteration, config.iterations, bl30k)
                  ) if follows_curriculum(config) else None
    return DataLoader(
        SeededSamples(dataset, curriculum), batch_size=per_rank, drop_last=True,
        sampler=TrainingSampler(len(dataset), per_rank, config.seed, rank, world_size, start_iteration),
        num_workers=config.num_workers, pin_memory=pin_memory,
    )


def follows_curriculum(config: TrainConfig) -> bool:
    """Whether the samples follow the frame-gap curriculum (video stages without --max_jump)."""
    return config.data != "static" and not config.max_jump


def first_planned_sample(config: TrainConfig) -> Optional[int]:
    """The first iteration whose samples depend on the total iterations (the curriculum's first switch), or
    None if no sample does: up to it, a budgeted run may draw its samples before its plan is final."""
    return first_switch(config.iterations, config.data == "bl30k") if follows_curriculum(config) else None
