"""A run's schedule as data: the iterations where its phases change (learning-rate steps and the frame-gap
curriculum's switches), given by the flags or placed by a time budget as it is spent (training/budget.py)."""
from dataclasses import dataclass, field

from dataset.curriculum import phase_at, switch_iterations
from training.config import TrainConfig


def lr_factor(iteration: int, steps: list[int], gamma: float, warmup: int = 0) -> float:
    """Step decay by `gamma` at each of `steps`, after an optional linear warm-up."""
    decay = gamma ** sum(iteration >= s for s in steps)
    return decay * min(1.0, (iteration + 1) / warmup) if warmup else decay


@dataclass
class Schedule:
    """Where a run's phases change, in iterations: its learning-rate steps and its curriculum's switches (none
    for static images or a fixed --max_jump). A phase change placed at iteration k applies from k on."""

    lr_steps: list[int] = field(default_factory=list)
    curriculum_switches: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, config: TrainConfig) -> "Schedule":
        """The schedule the flags give: --steps, and --curriculum_at or the supplementary's share of -i."""
        if not config.data.follows_curriculum:
            switches = []
        elif config.schedule.curriculum_at is not None:
            switches = list(config.schedule.curriculum_at)
        else:
            switches = list(switch_iterations(config.schedule.iterations, config.data.kind == "bl30k"))
        return cls(sorted(config.schedule.steps), switches)

    def lr_factor(self, iteration: int, gamma: float, warmup: int = 0) -> float:
        return lr_factor(iteration, self.lr_steps, gamma, warmup)

    def curriculum_phase(self, iteration: int) -> int:
        return phase_at(iteration, self.curriculum_switches)

    def state_dict(self) -> dict:
        return {"lr_steps": list(self.lr_steps), "curriculum_switches": list(self.curriculum_switches)}

    def load_state_dict(self, state: dict) -> None:
        self.lr_steps[:] = state["lr_steps"]  # in place: the loader's sampler reads this object
        self.curriculum_switches[:] = state["curriculum_switches"]

    def switches_until(self, iterations: int, count: int) -> tuple[int, ...]:
        """The curriculum's `count` switches as a run of `iterations` has them: one placed past its end, or not
        placed, is written at the end, where it changes nothing."""
        placed = [min(switch, iterations) for switch in self.curriculum_switches]
        return tuple(placed + [iterations] * (count - len(placed)))
