"""The max-frame-distance curriculum: switch points, BL30K's longer annealing, the YouTubeVOS stride."""
import pytest
from torch.utils.data import ConcatDataset, Dataset

from dataset.curriculum import max_jump, phase_at, set_curriculum, switch_iterations


def _gap(iteration: int, total: int, bl30k: bool = False, stride: int = 1) -> int:
    return max_jump(phase_at(iteration, switch_iterations(total, bl30k)), stride)


@pytest.mark.parametrize("iteration, expected", [
    (0, 5), (14_999, 5), (15_000, 10), (29_999, 10), (30_000, 15), (45_000, 20), (60_000, 25),
    (134_999, 25), (135_000, 5), (149_999, 5), (150_000, 5), (200_000, 5),
])
def test_main_training_switches_at_0_10_20_30_40_90_percent(iteration, expected):
    assert _gap(iteration, 150_000) == expected


@pytest.mark.parametrize("bl30k", [False, True])
def test_the_first_switch_is_the_first_iteration_at_or_past_10_percent(bl30k):
    for total in range(10, 400):  # (shorter runs pass several switches at once)
        switch = switch_iterations(total, bl30k)[0]
        assert 10 * switch >= total > 10 * (switch - 1)
        assert _gap(switch - 1, total, bl30k) == 5 and _gap(switch, total, bl30k) == 10


@pytest.mark.parametrize("iteration, expected", [
    (0, 5), (50_000, 10), (100_000, 15), (150_000, 20), (200_000, 25), (399_999, 25), (400_000, 5),
])
def test_bl30k_falls_back_at_80_percent(iteration, expected):
    assert _gap(iteration, 500_000, bl30k=True) == expected


def test_switches_given_as_iterations_and_at_the_same_iteration():
    assert [phase_at(i, (3, 3, 7, 7, 9)) for i in (0, 2, 3, 6, 7, 8, 9, 100)] == [0, 0, 2, 2, 4, 4, 5, 5]


def test_stride_divides_the_distance_and_keeps_at_least_one():
    total = 100
    assert [_gap(i, total, stride=5) for i in (0, 10, 20, 30, 40, 90)] == [1, 2, 3, 4, 5, 1]
    assert [_gap(i, total, stride=30) for i in (0, 40)] == [1, 1]


def test_bad_arguments():
    for arguments in [(6,), (-1,), (0, 0)]:
        with pytest.raises(ValueError):
            max_jump(*arguments)
    with pytest.raises(ValueError):
        switch_iterations(0)


class FakeVideoSet(Dataset):
    """Just what set_curriculum touches."""

    def __init__(self, stride: int) -> None:
        self.stride = stride
        self.max_jump = None

    def set_max_jump(self, value: int) -> None:
        self.max_jump = value

    def __len__(self) -> int:
        return 1


def test_set_curriculum_gives_each_set_its_stride_adjusted_distance():
    davis, youtube = FakeVideoSet(1), FakeVideoSet(5)
    combined = ConcatDataset([davis] * 5 + [youtube])
    set_curriculum(combined, phase=4)
    assert (davis.max_jump, youtube.max_jump) == (25, 5)
    set_curriculum(combined, phase=1)
    assert (davis.max_jump, youtube.max_jump) == (10, 2)
    set_curriculum(combined, phase=5)
    assert davis.max_jump == 5
