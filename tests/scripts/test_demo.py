"""scripts/demo.py end to end with a tiny budget: data, train.py, eval_davis.py, pictures, summary."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from eval_helpers import ROOT, run_script
from PIL import Image

from experiments.recipe import add_recipe_args, train_arguments

SUMMARY_KEYS = {"jf_trained", "jf_untrained", "jf_copy_first", "fps", "train_minutes", "iterations"}


@pytest.mark.slow
def test_demo_pipeline_fills_its_folder_stopped_and_resumed(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, DEMO_MINUTES="1")
    flags = ["scripts/demo.py", "--skip_parity", "--out", out, "--frame_size", "32", "48", "--val_videos", "2",
             "--val_frames", "5", "--train_frames", "5", "--objects", "2", "--batch", "1", "--iterations", "2",
             "--warmup", "1", "--curve_points", "2"]
    nothing = run_script(*flags[:3], tmp_path / "none", *flags[4:], "--resume", check=False)
    assert nothing.returncode == 2 and f"{tmp_path / 'none'}: no stopped demo run to resume" in nothing.stderr
    at_end = run_script(*flags, "--stop_at", "2", check=False)  # not a pause: train.py would go on past -i to it
    assert at_end.returncode == 2 and "--stop_at 2: a pause needs --iterations N" in at_end.stderr
    stopped = run_script(*flags, "--stop_at", "1", env=env)  # e.g. a job time limit
    assert "Training paused (--stop_at) at iteration 1" in stopped.stdout and not (out / "demo_summary.json").exists()
    checkpoint = next((out / "train").glob("*/*_checkpoint.pth"))
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 1
    same_stop = run_script(*flags, "--resume", "--stop_at", "1", check=False)  # would never get further
    assert same_stop.returncode != 0 and "already at iteration 1" in same_stop.stderr
    other = run_script(*flags, "--resume", "--lr", "0.001", "--val_videos", "3", check=False)
    assert other.returncode == 2 and "--lr 0.0002 (now 0.001)" in other.stderr and "--val_videos 2 (now 3)" in other.stderr
    result = run_script(*flags, "--resume", env=env)
    assert "continuing from iteration 1" in result.stdout
    finished = run_script(*flags, "--resume", check=False)
    assert finished.returncode == 2 and "this run is finished" in finished.stderr
    assert "J&F" in result.stdout and "copy-first" in result.stdout
    summary = json.loads((out / "demo_summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    for key in ("jf_trained", "jf_untrained", "jf_copy_first"):
        assert 0 <= summary[key] <= 1
    assert summary["iterations"] == 2 and summary["fps"] > 0 and summary["train_minutes"] > 0
    assert [point["iteration"] for point in summary["learning_curve"]] == [1, 2]
    masks = out / "masks"
    assert sorted(p.name for p in masks.iterdir() if p.is_dir() and p.name != ".complete") == ["val-000", "val-001"]
    assert len(list((masks / "val-000").glob("*.png"))) == 5
    assert (masks / "submission.zip").stat().st_size > 0 and (masks / "results.json").is_file()
    assert (out / "copy_first" / "results.json").is_file() and (out / "untrained" / "results.json").is_file()
    with Image.open(out / "overlay.gif") as gif:
        assert gif.n_frames == 5
    with Image.open(out / "learning_curve.png") as curve:
        assert curve.format == "PNG"
    run = next((out / "train").iterdir())
    assert any((run / "logs").iterdir())  # the TensorBoard log
    assert (run / "config.json").is_file()
    assert (out / summary["weights"]).is_file()
    assert {p.name for p in run.glob(f"{run.name}_[0-9]*.pth")} == {f"{run.name}_1.pth", f"{run.name}_2.pth"}
    spread = run_script("scripts/summarise_demos.py", out).stdout  # a real summary, one run
    assert f"**{summary['jf_trained']:.3f}**" in spread and "one run (no spread)" in spread


@pytest.mark.slow
def test_demo_without_iterations_trains_for_its_budget(tmp_path):
    out = tmp_path / "demo"
    run_script("scripts/demo.py", "--skip_parity", "--out", out, "--frame_size", "32", "48", "--val_videos", "2",
               "--val_frames", "5", "--train_frames", "5", "--objects", "2", "--warmup", "1",
               "--minutes", "0.3", "--curve_points", "2")
    summary = json.loads((out / "demo_summary.json").read_text())
    assert "--minutes 0.3" in summary["train_command"] and " -i 1000 " in summary["train_command"]
    assert " --lr 0.0002 " in summary["train_command"]  # the demo's rate, twice the paper's
    assert " -b 2 " in summary["train_command"]  # and its batch (the paper: 8 in main training)
    assert summary["iterations"] >= 1 and summary["learning_curve"][-1]["iteration"] == summary["iterations"]
    run = next((out / "train").iterdir())
    checkpoint = torch.load(run / f"{run.name}_checkpoint.pth", weights_only=True)
    assert 0.3 * 60 * 0.5 <= checkpoint["train_seconds"] <= 0.3 * 60 * 1.03 + 10  # the budget, spent


def test_ctrl_c_pauses_the_demo_with_a_checkpoint(tmp_path):
    out = tmp_path / "demo"
    iterations = 100000  # far more than can run before the signal, however fast the machine: it comes mid-training
    command = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--skip_parity", "--out", str(out), "--frame_size", "32",
               "48", "--val_videos", "1", "--val_frames", "3", "--train_frames", "3", "--objects", "1", "--batch",
               "1", "--iterations", str(iterations), "--warmup", "1", "--curve_points", "1", "--num_workers", "1"]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        # Ctrl-C's default action, even where the suite was started with SIGINT ignored (a background job `cmd &`
        # of a script inherits that, and Python then installs no KeyboardInterrupt handler)
        demo = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            for _ in range(600):  # until training has taken a step
                if re.search(rf"\| [1-9]\d*/{iterations}", (tmp_path / "stderr").read_text()):
                    break
                time.sleep(0.2)
            demo.send_signal(signal.SIGINT)  # what Ctrl-C sends (here to the demo alone)
            code = demo.wait(timeout=300)
            assert code == 130, f"exit {code}:\n" + (tmp_path / "stdout").read_text()[-2000:]
        finally:
            demo.kill()
    assert "Training paused (Ctrl-C)" in (tmp_path / "stdout").read_text()
    checkpoint = torch.load(next((out / "train").glob("*/*_checkpoint.pth")), weights_only=True)
    assert 1 <= checkpoint["iteration"] < iterations


def test_recipe_levers_reach_train_py_and_only_when_changed(tmp_path):
    parser = argparse.ArgumentParser()
    add_recipe_args(parser)

    def command(*flags: str) -> str:
        return " ".join(train_arguments(parser.parse_args(flags), 3, 100, tmp_path, 100)) + " "

    paper = command()
    assert "--synthetic 96 160 20 " in paper
    assert not any(flag in paper for flag in ("--sample_frames", "--max_targets", "--max_jump"))  # as before them
    levers = command("--train_size", "64", "112", "--sample_frames", "4", "--max_targets", "1", "--max_jump", "3")
    assert "--synthetic 64 112 20 " in levers  # training frames only: the validation set keeps --size
    assert "--sample_frames 4 " in levers and "--max_targets 1 " in levers and "--max_jump 3 " in levers
    refused = run_script("scripts/demo.py", "--out", tmp_path / "x", "--train_frames", "5", "--sample_frames", "6",
                         check=False)
    assert refused.returncode == 2 and "--sample_frames 6 must be between 2 and --train_frames (5)" in refused.stderr
    assert not (tmp_path / "x").exists()
