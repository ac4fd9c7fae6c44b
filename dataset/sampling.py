"""Sample order and per-sample randomness that depend only on (seed, rank, position in the stream).

Each rank walks an endless stream of epochs; every epoch's indices come from a DistributedSampler
seeded by the run's seed and the epoch. Each sample carries its own seed and the curriculum phase of the
iteration it will be trained at (decided in the main process as the sample is asked for), so that
augmentations and the curriculum do not depend on the number of loader workers, and a run resumed at
iteration k sees exactly the samples an uninterrupted run would have seen.
"""
import random
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

SampleKey = tuple[int, int, int]  # dataset index, sample seed, curriculum phase
FRAMES = 3  # frames per training sample: one memory frame, then two frames segmented in turn (seed F.1)
MAX_TARGETS = 2  # target objects per training sample (seed F.1)


@dataclass(frozen=True)
class ClipSpec:
    """What one video training sample holds: `frames` frames (the first one's mask given, the others
    segmented in turn) and up to `max_targets` (1 or 2) objects. The defaults are the paper's; other
    values are recipe levers (train.py --sample_frames / --max_targets)."""

    frames: int = FRAMES
    max_targets: int = MAX_TARGETS

    def __post_init__(self) -> None:
        if self.frames < 2 or self.max_targets not in (1, 2):
            raise ValueError(f"a training clip needs at least 2 frames and 1 or 2 targets, got {self.frames} "
                             f"frames and {self.max_targets} targets")


class TrainingSampler(Sampler[SampleKey]):
    """Endless stream of `SampleKey`s for one rank, starting at `start_iteration`; `phase_at(iteration)` gives
    a sample's curriculum phase when the loader asks for it (a DataLoader asks `prefetch_factor` batches
    per worker ahead of training)."""

    def __init__(self, dataset_length: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_iteration: int = 0, phase_at: Callable[[int], int] = lambda iteration: 0) -> None:
        if dataset_length == 0:
            raise ValueError("the training dataset is empty")
        self.dataset_length = dataset_length
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_iteration = start_iteration
        self.phase_at = phase_at

    def _epoch(self, epoch: int) -> list[int]:
        sampler = DistributedSampler(range(self.dataset_length), num_replicas=self.world_size, rank=self.rank,
                                     shuffle=True, seed=self.seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    def __iter__(self) -> Iterator[SampleKey]:
        per_epoch = len(self._epoch(0))
        position = self.start_iteration * self.batch_size
        epoch, offset = divmod(position, per_epoch)
        while True:
            indices = self._epoch(epoch)
            for index in indices[offset:]:
                sample_seed = int(np.random.SeedSequence([self.seed, self.rank, position]).generate_state(1)[0])
                yield index, sample_seed, self.phase_at(position // self.batch_size)
                position += 1
            epoch, offset = epoch + 1, 0


class SeededSamples(Dataset):
    """Wraps a dataset so that `dataset[SampleKey]` seeds torch, numpy and random from the key's seed
    (without disturbing the caller's RNGs) and sets the curriculum to the key's phase."""

    def __init__(self, dataset: Dataset, curriculum: Optional[Callable[[Dataset, int], None]] = None) -> None:
        self.dataset = dataset
        self.curriculum = curriculum

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> dict:
        index, sample_seed, phase = key
        if self.curriculum is not None:
            self.curriculum(self.dataset, phase)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)
