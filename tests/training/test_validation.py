"""train.py --val_root/--val_every: J&F during training, through the same core and metric as eval_davis.py."""
import json

import pytest
from eval_helpers import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from model.checkpoint import read_card
from training.validation import read_history, write_history


def _train(data_roots, save_dir, *extra, check=True):
    return run_script("train.py", "--stage", "3", "--davis_root", data_roots / "DAVIS", "--yv_root",
                      data_roots / "YouTube", "--no_pretrained", "-b", "2", "--crop_size", "64", "--num_workers", "0",
                      "--save_dir", save_dir, *extra, check=check)


def test_validation_is_logged_keeps_the_best_network_and_equals_eval_davis(data_roots, davis_root, tmp_path):
    result = _train(data_roots, tmp_path / "saves", "-i", "2", "--val_root", davis_root, "--val_every", "1")
    run = next((tmp_path / "saves").iterdir())
    history = read_history(run / "val" / "history.csv")
    assert [row["iteration"] for row in history] == [1, 2]
    assert all(0 <= row["jf"] <= 1 and row["train_minutes"] > 0 for row in history)
    best = max(history, key=lambda row: row["jf"])
    assert f"validation J&F: best {best['jf']:.4f}" in result.stdout
    weights = run / f"{run.name}_best.pth"
    card = read_card(weights)
    assert (card["iteration"], card["val_jf"]) == (best["iteration"], pytest.approx(best["jf"]))

    out = tmp_path / "eval"  # the kept network through eval_davis.py: the same number
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out, "--evaluate")
    assert json.loads((out / "results.json").read_text())["J&F-Mean"] == pytest.approx(best["jf"], abs=1e-9)

    events = EventAccumulator(str(run / "logs"))
    events.Reload()
    assert [event.step for event in events.Scalars("val/J&F")] == [1, 2]
    assert {"train/total_loss", "train/iou", "train/lr"} <= set(events.Tags()["scalars"])


@pytest.mark.slow
def test_a_resumed_run_continues_its_validation_history(data_roots, davis_root, tmp_path):
    _train(data_roots, tmp_path / "saves", "-i", "3", "--stop_at", "1", "--val_root", davis_root, "--val_every", "1")
    run = next((tmp_path / "saves").iterdir())
    checkpoint = run / f"{run.name}_checkpoint.pth"
    assert [row["iteration"] for row in read_history(run / "val" / "history.csv")] == [1]
    _train(data_roots, tmp_path / "saves", "-i", "3", "--stop_at", "2", "--val_root", davis_root, "--val_every", "3",
           "--resume", checkpoint)  # a pause between validations adds none: the run stays the one not paused
    assert [row["iteration"] for row in read_history(run / "val" / "history.csv")] == [1]
    again = _train(data_roots, tmp_path / "saves", "-i", "3", "--stop_at", "2", "--resume", checkpoint, check=False)
    assert again.returncode == 2 and "already at iteration 2" in again.stderr
    _train(data_roots, tmp_path / "saves", "-i", "3", "--val_root", davis_root, "--val_every", "3",
           "--resume", checkpoint)
    rows = read_history(run / "val" / "history.csv")
    assert [row["iteration"] for row in rows] == [1, 3]
    assert rows[1]["train_minutes"] > rows[0]["train_minutes"]  # training time counts across the resume


def test_history_rows_after_the_resumed_iteration_are_dropped(tmp_path):
    path = tmp_path / "history.csv"
    rows = [{"iteration": i, "jf": 0.1 * i, "j": 0.1, "f": 0.1, "train_minutes": i, "val_seconds": 1.0}
            for i in (10, 20, 30)]
    write_history(path, rows)
    assert read_history(path) == rows
    assert [row["iteration"] for row in read_history(path, before=20)] == [10]


def test_validation_flags_are_checked(data_roots, tmp_path):
    result = _train(data_roots, tmp_path, "-i", "1", "--val_every", "5", check=False)
    assert result.returncode == 2 and "--val_every 5: give a positive interval, with --val_root" in result.stderr
    result = _train(data_roots, tmp_path, "-i", "1", "--val_root", tmp_path / "nowhere", check=False)
    assert result.returncode == 2 and "nowhere: no such folder" in result.stderr
    assert "Traceback" not in result.stderr
