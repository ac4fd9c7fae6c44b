"""Curriculum of the largest distance between sampled frames (supplementary F.4, as in MiVOS).

The distance grows 5, 10, 15, 20, 25 over the first 40% of training, then falls back to 5 for the last
10% (main training) or 20% (BL30K). Values are in video frames; a set that stores every `stride`-th frame
(YouTubeVOS: 5) samples in stored frames, so the value is divided by the stride (at least 1).
"""
from torch.utils.data import ConcatDataset, Dataset

MAX_JUMPS = (5, 10, 15, 20, 25, 5)
SWITCH_PERCENTS = (0, 10, 20, 30, 40, 90)
BL30K_SWITCH_PERCENTS = (0, 10, 20, 30, 40, 80)


def max_jump(iteration: int, total_iterations: int, bl30k: bool = False, stride: int = 1) -> int:
    """The largest frame gap at `iteration` of `total_iterations`, in frames of a set storing every `stride`-th."""
    if total_iterations < 1 or iteration < 0 or stride < 1:
        raise ValueError(f"need 0 <= iteration and 1 <= total_iterations, stride; got iteration {iteration}, "
                         f"total_iterations {total_iterations}, stride {stride}")
    switches = BL30K_SWITCH_PERCENTS if bl30k else SWITCH_PERCENTS
    # Integer comparison, so that e.g. iteration 15000 of 150000 is exactly at the 10% switch.
    phase = sum(100 * iteration >= percent * total_iterations for percent in switches) - 1
    return max(1, MAX_JUMPS[phase] // stride)


def first_switch(total_iterations: int, bl30k: bool = False) -> int:
    """The first iteration past the first phase: the earliest whose largest gap depends on the total."""
    percent = (BL30K_SWITCH_PERCENTS if bl30k else SWITCH_PERCENTS)[1]
    return -(-percent * total_iterations // 100)


class FrameGapCurriculum:
    """For a video training set: the largest gap between consecutive sampled frames, in the set's stored
    frames (`stride`: video frames per stored frame), changed by `set_curriculum` as training goes.

    DataLoader workers copy the dataset when an epoch's iterator starts: call `set_max_jump` between
    epochs, and not with persistent_workers=True.
    """

    stride: int = 1
    max_jump: int = MAX_JUMPS[0]

    def set_max_jump(self, max_jump: int) -> None:
        if max_jump < 1:
            raise ValueError(f"max_jump must be at least 1, got {max_jump}")
        self.max_jump = max_jump


def _video_sets(dataset: Dataset) -> list[Dataset]:
    return dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]


def set_curriculum(dataset: Dataset, iteration: int, total_iterations: int, bl30k: bool = False) -> None:
    """Give every video set in `dataset` (one, or a ConcatDataset of them) its max_jump for `iteration`.

    Call it before each epoch's DataLoader iterator is created (workers copy the dataset at that moment).
    """
    for part in _video_sets(dataset):
        part.set_max_jump(max_jump(iteration, total_iterations, bl30k, part.stride))


def set_fixed_max_jump(dataset: Dataset, jump: int) -> None:
    """Instead of the curriculum: the largest gap `jump` (video frames) throughout, for every video set."""
    for part in _video_sets(dataset):
        part.set_max_jump(max(1, jump // part.stride))
