"""Curriculum of the largest distance between sampled frames (supplementary F.4, as in MiVOS).

The distance grows 5, 10, 15, 20, 25 over the first 40% of training, then falls back to 5 for the last
10% (main training) or 20% (BL30K). A run's curriculum is its five switch iterations (`switch_iterations`:
these percentages of -i, or where a time budget placed them); a sample is drawn in a phase, 0-5, the number
of switches at or before its iteration. Values are in video frames; a set that stores every `stride`-th
frame (YouTubeVOS: 5) samples in stored frames, so the value is divided by the stride (at least 1).
"""
import bisect
from typing import Sequence

from torch.utils.data import ConcatDataset, Dataset

MAX_JUMPS = (5, 10, 15, 20, 25, 5)  # per phase
SWITCH_PERCENTS = (10, 20, 30, 40, 90)
BL30K_SWITCH_PERCENTS = (10, 20, 30, 40, 80)


def switch_percents(bl30k: bool = False) -> tuple[int, ...]:
    """Where the phases change, in percent of the run."""
    return BL30K_SWITCH_PERCENTS if bl30k else SWITCH_PERCENTS


def switch_iterations(total_iterations: int, bl30k: bool = False) -> tuple[int, ...]:
    """The supplementary's switches in a run of `total_iterations`: the first iteration at or past each
    percentage (so iteration 15000 of 150000 is exactly at the 10% switch)."""
    if total_iterations < 1:
        raise ValueError(f"need at least 1 iteration, got {total_iterations}")
    return tuple(-(-percent * total_iterations // 100) for percent in switch_percents(bl30k))


def phase_at(iteration: int, switches: Sequence[int]) -> int:
    """The curriculum phase of `iteration`: how many of the (sorted) switches are at or before it."""
    return bisect.bisect_right(switches, iteration)


def max_jump(phase: int, stride: int = 1) -> int:
    """The largest frame gap of a phase, in frames of a set storing every `stride`-th."""
    if not 0 <= phase < len(MAX_JUMPS) or stride < 1:
        raise ValueError(f"need a phase in 0-{len(MAX_JUMPS) - 1} and a stride of at least 1, got phase {phase}, "
                         f"stride {stride}")
    return max(1, MAX_JUMPS[phase] // stride)


class FrameGapCurriculum:
    """For a video training set: the largest gap between consecutive sampled frames, in the set's stored
    frames (`stride`: video frames per stored frame), set per sample by `set_curriculum`."""

    stride: int = 1
    max_jump: int = MAX_JUMPS[0]

    def set_max_jump(self, max_jump: int) -> None:
        if max_jump < 1:
            raise ValueError(f"max_jump must be at least 1, got {max_jump}")
        self.max_jump = max_jump


def _video_sets(dataset: Dataset) -> list[Dataset]:
    return dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]


def set_curriculum(dataset: Dataset, phase: int) -> None:
    """Give every video set in `dataset` (one, or a ConcatDataset of them) the largest gap of `phase`."""
    for part in _video_sets(dataset):
        part.set_max_jump(max_jump(phase, part.stride))


def set_fixed_max_jump(dataset: Dataset, jump: int) -> None:
    """Instead of the curriculum: the largest gap `jump` (video frames) throughout, for every video set."""
    for part in _video_sets(dataset):
        part.set_max_jump(max(1, jump // part.stride))
