"""util/timing.py: laps and totals of the one stopwatch."""
import pytest

from util import timing
from util.timing import Stopwatch


class _Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def perf_counter(self) -> float:
        return self.now


def test_laps_and_total(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(timing, "time", clock)
    watch = Stopwatch()
    clock.now += 1.5
    assert watch.lap() == pytest.approx(1.5)
    clock.now += 2.0
    assert watch.lap() == pytest.approx(2.0) and watch.total() == pytest.approx(3.5)
    watch.restart()
    clock.now += 0.25
    assert watch.total() == pytest.approx(0.25) and watch.lap() == pytest.approx(0.25)
