"""Logged values are means over the logging interval and over the ranks."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.logging import IntervalAverages


def test_values_are_averaged_over_the_interval_and_reset():
    averages = IntervalAverages(("total_loss", "iou", "sec_iou"))
    averages.add({"total_loss": torch.tensor(1.0), "iou": torch.tensor(0.5), "other": 7})
    averages.add({"total_loss": torch.tensor(3.0), "iou": torch.tensor(0.7), "sec_iou": torch.tensor(0.2)})
    means = averages.averages()
    assert means["total_loss"] == pytest.approx(2.0) and means["iou"] == pytest.approx(0.6)
    assert means["sec_iou"] == pytest.approx(0.2)  # only the steps that had a second object
    averages.add({"total_loss": 5.0})
    assert averages.averages() == {"total_loss": pytest.approx(5.0)}  # a new interval
    assert averages.averages() == {}


def _rank_means(rank: int, world: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    averages = IntervalAverages(("total_loss", "sec_iou"), world_size=world)
    for step in range(3):  # rank r logs r * 10 + step
        values = {"total_loss": torch.tensor(float(rank * 10 + step))}
        if rank == 1 and step == 0:
            values["sec_iou"] = torch.tensor(0.4)
        averages.add(values)
    results[rank] = averages.averages()
    dist.destroy_process_group()


def test_values_are_averaged_across_ranks(tmp_path):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank_means, args=(2, str(tmp_path / "init"), results), nprocs=2)
        results = dict(results)
    for rank in (0, 1):  # every rank gets the same means: (0+1+2 + 10+11+12) / 6
        assert results[rank]["total_loss"] == pytest.approx(6.0)
        assert results[rank]["sec_iou"] == pytest.approx(0.4)
