"""Training for a time budget: the schedule's phases come at their share of the budget spent (a slow start
does not move them), they are recorded where they came, the recorded flags repeat the run exactly, and a
paused budgeted run resumes exactly."""
import os
import re
import subprocess
import sys

import pytest
import torch
from eval_helpers import ROOT, run_script

from model.checkpoint import read_card
from training import loop
from training.budget import TimeBudget
from training.config import TrainConfig, training_parser
from training.data import batches_ahead, build_dataset, training_loader
from training.schedule import Schedule
from training.trainer import RunPaths, Trainer, parameter_checksum
from util import timing
from util.fileio import InputError

TINY = ["--stage", "3", "--synthetic", "32", "32", "16", "--sample_frames", "2", "--no_pretrained", "-b", "1",
        "--lr", "1e-5", "--save_every", "100000", "--device", "cpu"]


def _config(*flags: str) -> TrainConfig:
    return TrainConfig.from_args(training_parser().parse_args(list(flags)))


def _spend(budget: TimeBudget, seconds_of) -> list[float]:
    """Step a simulated run until its budget is spent; returns the training seconds after each iteration."""
    spent = [0.0]
    while not budget.spent(spent[-1]):
        spent.append(spent[-1] + seconds_of(len(spent) - 1))
        budget.update(len(spent) - 1, spent[-1])
    return spent


def _time_share_at(spent: list[float], iteration: int, budget_seconds: float) -> float:
    """The share of the budget spent before `iteration`."""
    return spent[min(iteration, len(spent) - 1)] / budget_seconds


@pytest.mark.parametrize("seconds_of", [
    lambda i: 2.0,  # steady
    lambda i: 20.0 if i < 3 else 2.0,  # a slow start: loading, first-call costs
    lambda i: 5.0 if i < 120 else 2.0,  # the machine busy for the first 10 minutes
    lambda i: 2.0 if i < 120 else 5.0,  # the machine busy after a while
], ids=["steady", "slow start", "busy first", "busy later"])
def test_each_phase_comes_at_its_share_of_the_budget_whatever_the_speed(seconds_of):
    config = _config("--stage", "3", "-i", "1000", "--steps", "800", "--minutes", "18", "--num_workers", "2")
    schedule = Schedule()
    budget = TimeBudget.of(config, schedule, lookahead=1 + batches_ahead(config))
    spent = _spend(budget, seconds_of)
    assert 18 * 60 <= spent[-1] < 18 * 60 + 20  # spent, to within a step
    slack = (budget.lookahead + 1) * max(map(seconds_of, range(len(spent)))) / (18 * 60)  # a decision's delay
    for switch, share in zip(schedule.curriculum_switches, (0.1, 0.2, 0.3, 0.4, 0.9)):
        assert share <= _time_share_at(spent, switch, 18 * 60) <= share + slack
    [lr_step] = schedule.lr_steps
    assert 0.8 <= _time_share_at(spent, lr_step, 18 * 60) <= 0.8 + slack
    assert len(schedule.curriculum_switches) == 5


def test_the_slow_start_the_old_plan_ran_past_now_keeps_the_last_phases_short():
    # the fresh-clone demo: its first 4 minutes busy. Fixing a plan from them gave 141 iterations and
    # the run went on to 531, 73% of its steps after the learning-rate step. Now the last 20% of the minutes
    # is the last 20% of the run, in time.
    def seconds_of(i):
        return 4.0 if i < 60 else 1.6
    config = _config("--stage", "3", "-i", "1000", "--steps", "800", "--minutes", "18")
    schedule = Schedule()
    spent = _spend(TimeBudget.of(config, schedule, lookahead=1), seconds_of)
    [lr_step] = schedule.lr_steps
    after_step = len(spent) - 1 - lr_step
    assert after_step * 1.6 == pytest.approx(0.2 * 18 * 60, abs=2 * 1.6)
    assert after_step / (len(spent) - 1) < 0.25


def test_a_phase_change_comes_after_the_batches_the_loader_has_asked_for():
    config = _config("--stage", "3", "-i", "100", "--steps", "80", "--minutes", "1", "--num_workers", "3")
    assert batches_ahead(config) == 6  # 2 batches per worker
    schedule = Schedule()
    budget = TimeBudget.of(config, schedule, lookahead=7)
    news = budget.update(iteration=10, train_seconds=6.5)  # past 10% of the minute
    assert schedule.curriculum_switches == [17] and news.placed == ["curriculum switch 1 at iteration 17 (10% of "
                                                                    "the budget)"]
    budget.update(iteration=11, train_seconds=19.0)  # 20% and 30%: two switches at once
    assert schedule.curriculum_switches == [17, 18, 18] and schedule.lr_steps == []


def test_validation_points_come_at_shares_of_the_budget(tmp_path):
    config = _config("--stage", "3", "-i", "100", "--minutes", "1", "--val_root", str(tmp_path), "--val_points", "4")
    budget = TimeBudget.of(config, Schedule(), lookahead=1)
    due = [i for i in range(1, 61) if budget.update(i, float(i)).validate]
    assert due == [15, 30, 45]  # the fourth at the end
    assert budget.state_dict() == {"validations_done": 3, "lookahead": 1}


def test_schedule_flags_and_their_checks():
    assert Schedule.of(_config("--stage", "3", "-i", "150000")).curriculum_switches == [15000, 30000, 45000, 60000,
                                                                                         135000]
    assert Schedule.of(_config("--stage", "1", "-i", "100")).curriculum_switches == [10, 20, 30, 40, 80]
    assert Schedule.of(_config("--stage", "0", "-i", "100")).curriculum_switches == []
    assert Schedule.of(_config("--stage", "3", "-i", "100", "--max_jump", "10")).curriculum_switches == []
    given = _config("--stage", "3", "-i", "50", "--steps", "40", "--curriculum_at", "3", "7", "9", "12", "49")
    assert Schedule.of(given) == Schedule([40], [3, 7, 9, 12, 49])
    assert given.schedule_flags() == ["-i", "50", "--steps", "40", "--curriculum_at", "3", "7", "9", "12", "49"]
    for flags, message in ((["--stage", "3", "--curriculum_at", "1", "2"], "needs 5 iterations in order"),
                           (["--stage", "3", "--curriculum_at", "5", "4", "6", "7", "8"], "in order"),
                           (["--stage", "0", "--curriculum_at", "1", "2", "3", "4", "5"], "video stage"),
                           (["--stage", "3", "--minutes", "1", "--curriculum_at", "1", "2", "3", "4", "5"], "by time")):
        with pytest.raises(InputError, match=message):
            _config(*flags)


class _SimulatedClock:
    """The training loop's clock (util/timing.py) in a simulated run: a step takes the seconds given, nothing
    else."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def _run_simulated(save_dir, monkeypatch, seconds_of, *flags, stop_at=None, resume=None, validator=None):
    """run_training on real steps (32x32, two frames per sample), each taking `seconds_of(iteration)` by the
    loop's clock; returns the trainer, the summary and the curriculum phase of every sample drawn."""
    clock = _SimulatedClock()
    monkeypatch.setattr(timing, "time", clock)
    config = _config(*TINY, "-i", "1000", "--steps", "800", "--minutes", "0.5", "--save_dir", str(save_dir), *flags)
    trainer = Trainer(config, torch.device("cpu"))
    run = RunPaths(resume.parent, trainer.load(resume)) if resume else RunPaths(save_dir / "run", "run")
    real_step, phases = trainer.step, []

    def timed_step(batch):
        clock.now += seconds_of(trainer.iteration)
        phases.append(batch["max_jump"].tolist())
        return real_step(batch)

    trainer.step = timed_step
    dataset = _PhaseRecording(build_dataset(config))
    summary = loop.run_training(trainer, lambda start: iter(training_loader(
        dataset, config, start, 0, 1, False, trainer.schedule.curriculum_phase)), run, stop_at, validator)
    return trainer, summary, phases


class _PhaseRecording(torch.utils.data.Dataset):
    """A video training set whose samples also say the largest frame gap they were drawn with."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.stride = dataset.stride

    def set_max_jump(self, max_jump: int) -> None:
        self.dataset.set_max_jump(max_jump)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[index], "max_jump": self.dataset.max_jump}


@pytest.mark.slow
def test_samples_are_drawn_in_the_phase_the_schedule_gives_their_iteration(tmp_path, monkeypatch):
    # two loader workers ask for 4 batches ahead; a busy start (3 s steps, then 1 s) moves the switches in
    # iterations, not in time, and no sample is drawn before its phase is decided
    def seconds_of(iteration):
        return 3.0 if iteration < 4 else 1.0
    trainer, summary, gaps = _run_simulated(tmp_path, monkeypatch, seconds_of, "--num_workers", "2")
    schedule = trainer.schedule
    assert summary["finished"] and trainer.train_seconds == 30.0 and trainer.iteration == 22
    expected = [[(5, 10, 15, 20, 25, 5)[schedule.curriculum_phase(i)]] for i in range(trainer.iteration)]
    # 3, 6, 9 and 12 s spent after iterations 1-4, 27 s after 19: each applied 5 iterations later (the last
    # one past the end)
    assert gaps == expected and schedule.curriculum_switches == [6, 7, 8, 9, 24]
    assert schedule.lr_steps == [21]  # 24 s spent after iteration 16
    assert trainer.config.schedule_flags() == ["-i", "22", "--steps", "21", "--curriculum_at", "6", "7", "8", "9",
                                               "22"]  # written as at the end: it changed nothing


@pytest.mark.slow
def test_a_paused_budgeted_run_resumes_exactly_and_validates_at_its_shares(tmp_path, monkeypatch):
    def seconds_of(iteration):
        return 2.0 if iteration < 5 else 1.0
    validated = []

    def validator(trainer, run):
        validated.append(trainer.iteration)
    # one loader worker: phase changes apply 3 iterations after they are decided, in both parts of the run
    straight, summary, _ = _run_simulated(tmp_path / "straight", monkeypatch, seconds_of, "--num_workers", "1",
                                          "--val_root", str(tmp_path), "--val_points", "3", validator=validator)
    assert summary["finished"] and validated == [5, 15, 25]  # after 10 s, 20 s and at the end
    paused, summary, _ = _run_simulated(tmp_path / "parts", monkeypatch, seconds_of, "--num_workers", "1", stop_at=9)
    assert not summary["finished"] and paused.iteration == 9
    resumed, again, _ = _run_simulated(tmp_path / "parts", monkeypatch, seconds_of, "--num_workers", "1",
                                       resume=tmp_path / "parts" / "run" / "run_checkpoint.pth")
    assert again["finished"] and resumed.iteration == straight.iteration
    assert resumed.schedule == straight.schedule and resumed.train_seconds == straight.train_seconds
    assert parameter_checksum(resumed.network) == parameter_checksum(straight.network)
    card = read_card(tmp_path / "parts" / "run" / f"run_{resumed.iteration}.pth")
    assert card["train_config"]["iterations"] == resumed.iteration  # recorded as the flags that repeat it
    assert card["train_config"]["curriculum_at"] == straight.schedule.curriculum_switches


def test_a_checkpoint_continues_only_with_or_without_a_budget_as_it_was_written(tmp_path):
    def trainer(*flags):
        return Trainer(_config("--stage", "3", "--no_pretrained", "-i", "100", "--steps", "80", *flags),
                       torch.device("cpu"))
    budgeted, plain = RunPaths(tmp_path / "a", "a"), RunPaths(tmp_path / "b", "b")
    first = trainer("--minutes", "1", "--num_workers", "1")
    first.schedule.curriculum_switches.extend([7, 9])
    first.save(budgeted, network_too=False)
    trainer("--num_workers", "1").save(plain, network_too=False)
    with pytest.raises(InputError, match="a run with --minutes; continue it with --minutes"):
        trainer().load(budgeted.checkpoint)
    with pytest.raises(InputError, match="a run without --minutes; continue it without --minutes"):
        trainer("--minutes", "1").load(plain.checkpoint)
    resumed = trainer("--minutes", "1", "--num_workers", "2")  # a loader asking further ahead than before
    resumed.load(budgeted.checkpoint)
    assert resumed.schedule.curriculum_switches == [7, 9] and resumed.budget.lookahead == 5
    fewer = trainer("--minutes", "1", "--num_workers", "0")
    fewer.load(budgeted.checkpoint)
    assert fewer.budget.lookahead == 3  # the run's own, as an unstopped run


def _checksum(output: str) -> str:
    return re.search(r"parameter checksum (\S+)", output).group(1)


@pytest.mark.slow
def test_train_py_spends_its_budget_and_its_printed_flags_repeat_the_run(tmp_path):
    budgeted = run_script("train.py", *TINY, "--num_workers", "1", "-i", "1000", "--steps", "800", "--minutes", "0.2",
                          "--save_dir", tmp_path / "a")
    checkpoint = torch.load(next((tmp_path / "a").glob("*/*_checkpoint.pth")), weights_only=True)
    assert 12 <= checkpoint["train_seconds"] <= 12 + 3  # to within a step
    repeat = re.search(r"0.2-minute budget spent in (\d+) iterations; .* repeat exactly with (.*)\n",
                       budgeted.stdout).group(2).split()
    assert repeat[:2] == ["-i", str(checkpoint["iteration"])] and "--curriculum_at" in repeat
    repeated = run_script("train.py", *TINY, "--num_workers", "1", *repeat, "--save_dir", tmp_path / "b")
    assert _checksum(repeated.stdout) == _checksum(budgeted.stdout)
    # the curriculum's place matters: the same -i and --steps with the supplementary's shares of -i differ
    shares = run_script("train.py", *TINY, "--num_workers", "1", *repeat[:repeat.index("--curriculum_at")],
                        "--save_dir", tmp_path / "c")
    assert _checksum(shares.stdout) != _checksum(budgeted.stdout)


@pytest.mark.slow
def test_torchrun_ranks_follow_rank_0s_clock_and_stop_together(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29812",
               str(ROOT / "train.py"), *TINY, "-b", "2", "--num_workers", "0", "-i", "1000", "--steps", "800",
               "--minutes", "0.2", "--save_dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    sums = re.findall(r"rank \d: parameter checksum (\S+)", result.stdout)
    assert len(sums) == 2 and sums[0] == sums[1], result.stdout
    checkpoint = torch.load(next(tmp_path.glob("*/*_checkpoint.pth")), weights_only=True)
    assert 12 <= checkpoint["train_seconds"] <= 12 + 5
    assert len(checkpoint["schedule"]["curriculum_switches"]) >= 4
