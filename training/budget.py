"""Training for a wall-clock budget: the run ends when its training steps have taken `--minutes`, and each
phase of its schedule (a learning-rate step, a curriculum switch, a validation) comes when its share of the
budget is spent: an LR step at 80% of -i comes after 80% of the minutes, however fast the first steps were.

The iterations where the phases came are recorded in the schedule (and the checkpoint), so that
`-i N --steps ... --curriculum_at ...` repeats the run exactly. A phase change decided after iteration k
applies from iteration k + `lookahead`: the data loader has already been asked for the batches before it
(training/data.batches_ahead), and the learning rate of iteration k is already set.
"""
from dataclasses import dataclass, field

from dataset.curriculum import switch_percents
from training.config import TrainConfig
from training.schedule import Schedule


@dataclass
class BudgetNews:
    """What spending the budget up to an iteration brought: phase changes placed, a validation due."""

    placed: list[str] = field(default_factory=list)
    validate: bool = False


@dataclass
class TimeBudget:
    """`seconds` of training steps; places `schedule`'s phases at their fractions of the budget."""

    seconds: float
    schedule: Schedule
    lr_fractions: tuple[float, ...]  # each learning-rate step's share of the run
    curriculum_fractions: tuple[float, ...]  # each curriculum switch's share
    validation_fractions: tuple[float, ...] = ()  # validations before the end (--val_points)
    lookahead: int = 1
    validations_done: int = 0

    @classmethod
    def of(cls, config: TrainConfig, schedule: Schedule, lookahead: int) -> "TimeBudget":
        """The budget of a --minutes run: the fractions of its -i/--steps schedule, its curriculum and its
        --val_points."""
        lr_fractions = tuple(step / config.schedule.iterations for step in sorted(config.schedule.steps))
        curriculum = (tuple(p / 100 for p in switch_percents(config.data.kind == "bl30k"))
                      if config.data.follows_curriculum else ())
        validations = tuple(i / config.log.val_points for i in range(1, config.log.val_points))
        return cls(config.schedule.minutes * 60, schedule, lr_fractions, curriculum, validations, lookahead)

    def fraction(self, train_seconds: float) -> float:
        return train_seconds / self.seconds

    def spent(self, train_seconds: float) -> bool:
        return train_seconds >= self.seconds

    def update(self, iteration: int, train_seconds: float) -> BudgetNews:
        """After `iteration` iterations that took `train_seconds` of training steps: place the phase changes
        whose share of the budget is now spent, at iteration + lookahead."""
        news = BudgetNews()
        spent = self.fraction(train_seconds)
        effective = iteration + self.lookahead
        for name, fractions, placed in (("learning-rate step", self.lr_fractions, self.schedule.lr_steps),
                                        ("curriculum switch", self.curriculum_fractions,
                                         self.schedule.curriculum_switches)):
            while len(placed) < len(fractions) and spent >= fractions[len(placed)]:
                placed.append(effective)
                news.placed.append(f"{name} {len(placed)} at iteration {effective} "
                                   f"({100 * fractions[len(placed) - 1]:g}% of the budget)")
        while self.validations_done < len(self.validation_fractions) and \
                spent >= self.validation_fractions[self.validations_done]:
            self.validations_done += 1
            news.validate = True
        return news

    def state_dict(self) -> dict:
        return {"validations_done": self.validations_done, "lookahead": self.lookahead}

    def load_state_dict(self, state: dict) -> None:
        """Continue a budget: its validations so far and its lookahead (kept, unless this process's loader
        asks further ahead: more --num_workers then move the later phases, and the resumed run differs)."""
        self.validations_done = state["validations_done"]
        self.lookahead = max(self.lookahead, state["lookahead"])
