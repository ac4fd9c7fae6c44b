"""Training for a wall-clock budget: the total iterations planned from the measured speed, early.

The schedule's shape comes from `-i`/`--steps` (the learning-rate steps as fractions of the run); the
planner stretches it to the iterations that fit the budget. Start-up iterations (loading, first-call
costs, a briefly busy machine) are not timed; the plan is revised as iterations are timed and frozen at
`FREEZE_FRACTION` of the planned run, once at least `MIN_TIMED` iterations are timed. The speed is that
of the later half of the timed iterations, since the first ones after start-up can still be slower,
without the single iterations that paid a one-time cost (`steady_seconds_per_iteration`). Everything in
the schedule that depends on the total (the learning-rate steps, the curriculum after its first 10%)
comes later, so the recorded total repeated with `-i N --steps ...` gives exactly the same run; a run
too short to time `MIN_TIMED` iterations before its first 10% (under about 230 iterations) fixes its plan
later, spending its budget rather than repeating exactly (`frozen_at` says where; until then the run
takes no learning-rate step and its curriculum stays in its first phase).

A plan is only as good as the speed of its first steps, and a shared machine's speed drifts. The errors
are made one-sided: a run that reaches its plan with budget left goes on in the schedule's last phase (its
last learning rate, the curriculum's last phase) until the budget is spent (`spent`), and a run still short
of its plan stops at the budget plus `OVERRUN` (`out_of_time`). Either way `--stop_at K` beside the plan
repeats it exactly.
"""
import statistics
from dataclasses import dataclass, field
from typing import Optional

STARTUP_ITERATIONS = 3  # not timed: first-call and start-up costs
FIRST_PLAN_AFTER = 3  # timed iterations before the first plan; then re-planned each time they double
FREEZE_FRACTION = 0.08  # the plan is fixed from here on (the curriculum's first switch is at 10%)
# Timed iterations before the plan may be fixed: a step's time takes about 10 iterations to settle, and plans
# fixed after 20 spend the budget to within a few percent (docs/learning.md#time-budgets).
MIN_TIMED = 20
OVERRUN = 0.03  # a run still short of its plan stops at the budget plus this fraction
SPIKE = 2.0  # an iteration over this many times the median one paid a one-time cost: not counted in the speed


def steady_seconds_per_iteration(times: list[tuple[int, float]]) -> float:
    """Seconds per iteration from (iteration, cumulative seconds) points, without the iterations that took
    over SPIKE times the median: one-off costs, such as the step after the loader's worker is forked again
    (on this 2-core CPU at batch 2, 7-8 s against 2.5 s). When the loader was rebuilt at every re-plan,
    counting them planned a quarter too few iterations."""
    durations = [(seconds_b - seconds_a) / (iteration_b - iteration_a)
                 for (iteration_a, seconds_a), (iteration_b, seconds_b) in zip(times, times[1:])]
    if not durations:
        raise ValueError("need at least two timed points")
    typical = statistics.median(durations)
    return statistics.fmean(duration for duration in durations if duration <= SPIKE * typical)


@dataclass
class BudgetPlanner:
    """Plans the total iterations of a run that has `seconds` of training steps."""

    seconds: float
    shape_iterations: int  # -i: the schedule's length as given
    shape_steps: tuple[int, ...]  # --steps: its learning-rate steps
    start_iteration: int = 0  # where this process started (a resumed run has start-up costs again)
    planned: Optional[int] = None
    per_iteration: float = float("nan")  # seconds, measured after start-up
    frozen_at: Optional[int] = None  # the iteration the plan became final at
    _times: list[tuple[int, float]] = field(default_factory=list, repr=False)  # (iteration, seconds) after start-up
    _next_plan_after: int = field(default=FIRST_PLAN_AFTER, repr=False)

    @property
    def frozen(self) -> bool:
        """Whether the plan is final."""
        return self.frozen_at is not None

    def steps_for(self, iterations: int) -> tuple[int, ...]:
        """The learning-rate steps stretched to a run of `iterations`."""
        return tuple(max(1, round(step * iterations / self.shape_iterations)) for step in self.shape_steps)

    def observe(self, iteration: int, train_seconds: float) -> Optional[int]:
        """After `iteration` iterations and `train_seconds` of training steps: the new planned total if the
        plan changed, else None."""
        if self.frozen:
            return None
        if iteration < self.start_iteration + STARTUP_ITERATIONS:
            return None
        self._times.append((iteration, train_seconds))
        timed = iteration - self._times[0][0]
        at_freeze = self.planned is not None and iteration >= FREEZE_FRACTION * self.planned
        if timed < self._next_plan_after and not at_freeze:
            return None
        self._next_plan_after = 2 * timed
        self.per_iteration = steady_seconds_per_iteration(self._times[len(self._times) // 2:])
        remaining = max(0.0, self.seconds - train_seconds)
        planned = max(iteration + 1, iteration + int(remaining / max(self.per_iteration, 1e-9)))
        if iteration >= FREEZE_FRACTION * planned and timed >= MIN_TIMED:
            self.frozen_at = iteration
        if planned == self.planned:
            return None
        self.planned = planned
        return planned

    def adopt(self, planned: Optional[int], frozen_at: Optional[int]) -> None:
        """Follow another process's plan (rank 0's under torchrun): its total and where it became final."""
        self.planned, self.frozen_at = planned, frozen_at

    def spent(self, train_seconds: float) -> bool:
        """The budget is used up: a run past its plan stops here."""
        return train_seconds >= self.seconds

    def out_of_time(self, train_seconds: float) -> bool:
        """Past the budget and its allowance: stop even if the plan is not reached (the machine slowed)."""
        return train_seconds > self.seconds * (1 + OVERRUN)


def plan_summary(minutes: float, summary: dict, first_planned_sample: Optional[int]) -> str:
    """The line a budgeted run ends with: its plan and the arguments that repeat it, exactly unless iterations
    run before the plan was final would have had a learning-rate step or a curriculum switch (from
    `first_planned_sample`, if the samples follow one) under the final plan."""
    planned, reached, final_at = summary["planned_iterations"], summary["iteration"], summary["plan_final_at"]
    repeat = f"-i {planned} --steps {' '.join(map(str, summary['steps']))}"
    repeat += f" --stop_at {reached}" if reached != planned else ""
    plan = f"planned {planned} iterations"
    plan += f", reached with budget left, and went on in its last phase to {reached}" if reached > planned else ""
    unplanned_until = reached if final_at is None else final_at
    first_planned = min((i for i in (first_planned_sample, *summary["steps"]) if i is not None), default=None)
    if first_planned is None or unplanned_until <= first_planned:
        return f"{minutes:g}-minute budget: {plan} (repeat exactly with {repeat})"
    early = (f"iterations {first_planned}-{unplanned_until - 1}" if unplanned_until - 1 > first_planned
             else f"iteration {first_planned}")
    final = "never final" if final_at is None else f"final at iteration {final_at}"
    return (f"{minutes:g}-minute budget: {plan}, {final}: {repeat} repeats the run but for the schedule of {early}, "
            f"which stayed at its start (no learning-rate step, the curriculum's first phase) while too few steps "
            f"were timed")
