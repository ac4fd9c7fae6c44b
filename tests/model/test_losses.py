"""Bootstrapped cross-entropy schedule (seed F.5) and hard pixel mining."""
import pytest
import torch
import torch.nn.functional as F

from model.losses import BootstrapSchedule, bootstrapped_cross_entropy, class_target


@pytest.mark.parametrize("iteration, p", [(0, 1.0), (19_999, 1.0), (20_000, 1.0), (45_000, 0.575),
                                          (70_000, 0.15), (300_000, 0.15)])
def test_schedule_matches_the_paper(iteration, p):
    assert BootstrapSchedule().fraction(iteration) == pytest.approx(p)


def test_bootstrap_keeps_only_the_hardest_pixels():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 10, 10, generator=gen)
    target = torch.randint(0, 3, (1, 10, 10), generator=gen)
    pixel = F.cross_entropy(logits, target, reduction="none").flatten().sort(descending=True).values
    loss, p = bootstrapped_cross_entropy(logits, target, 100_000)
    assert p == pytest.approx(0.15)
    torch.testing.assert_close(loss, pixel[:15].mean())
    plain, _ = bootstrapped_cross_entropy(logits, target, 0)
    torch.testing.assert_close(plain, pixel.mean())


def test_class_target_gives_second_object_priority():
    gt = torch.zeros(1, 2, 1, 2, 2)
    sec = torch.zeros(1, 2, 1, 2, 2)
    gt[0, :, 0, 0, :] = 1
    sec[0, :, 0, :, 0] = 1
    target = class_target(gt, sec)
    assert target[0, 0].tolist() == [[2, 1], [2, 0]]
