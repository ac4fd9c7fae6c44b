"""One way to time work: wall-clock laps, with the device's queued work finished first when asked (CUDA
runs asynchronously). The training loop's budget, the ablation's speed probe and the benchmarks use it."""
import time
from typing import Optional

import torch

from util.distributed import synchronise


class Stopwatch:
    """Seconds since the start or the last lap. With a `device`, each reading first waits for its queued work
    (for benchmarks; the training loop reads it without, so as not to stall the GPU)."""

    def __init__(self, device: Optional[torch.device] = None) -> None:
        self.device = device
        self.restart()

    def _now(self) -> float:
        if self.device is not None:
            synchronise(self.device)
        return time.perf_counter()

    def restart(self) -> None:
        self.started = self.last = self._now()

    def lap(self) -> float:
        """Seconds since the last lap (or the start)."""
        now = self._now()
        seconds, self.last = now - self.last, now
        return seconds

    def total(self) -> float:
        """Seconds since the start."""
        return self._now() - self.started
