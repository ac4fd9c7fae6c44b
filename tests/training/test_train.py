"""train.py and the trainer: stage defaults, exact resume, torchrun DDP, signals, non-finite losses."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from eval_helpers import ROOT, run_script

from training.config import STAGES, TrainConfig, training_parser
from training.schedule import lr_factor
from training.trainer import Trainer, TrainingError
from util.fileio import InputError


def _video_args(roots, save_dir, *extra):
    return ["--stage", "3", "--davis_root", roots / "DAVIS", "--yv_root", roots / "YouTube", "--no_pretrained",
            "-b", "2", "--crop_size", "64", "--num_workers", "0", "--save_dir", save_dir, *extra]


def _checksums(output: str) -> list[str]:
    return [line.split("checksum ")[1] for line in output.splitlines() if "parameter checksum" in line]


def test_stage_defaults_follow_the_paper():
    for stage, iterations, step, batch in [(0, 300_000, 150_000, 16), (1, 500_000, 450_000, 8),
                                           (2, 300_000, 250_000, 8), (3, 150_000, 125_000, 8)]:
        config = TrainConfig.from_args(training_parser().parse_args(["--stage", str(stage)]))
        assert (config.schedule.iterations, config.schedule.steps, config.optim.batch_size) == (iterations, (step,), batch)
        assert config.optim.lr == 1e-5 and config.optim.weight_decay == 1e-7 and config.schedule.gamma == 0.1
        assert config.data.single_object == (stage == 0) and config.data.crop_size == 384 and config.network.pretrained
    custom = TrainConfig.from_args(training_parser().parse_args(
        ["--stage", "3", "-i", "10", "-b", "4", "--steps", "5", "7", "--lr", "2e-5", "--no_pretrained"]))
    assert (custom.schedule.iterations, custom.optim.batch_size, custom.schedule.steps, custom.optim.lr,
            custom.network.pretrained) == (10, 4, (5, 7), 2e-5, False)
    assert set(STAGES) == {0, 1, 2, 3}
    pooled = TrainConfig.from_args(training_parser().parse_args(
        ["--stage", "3", "--synthetic", "48", "64", "6", "--synthetic_pool", "80"]))
    assert (pooled.data.synthetic, pooled.data.synthetic_pool) == ((48, 64, 6), 80)
    with pytest.raises(InputError, match="--synthetic_pool needs --synthetic"):
        TrainConfig.from_args(training_parser().parse_args(["--stage", "3", "--synthetic_pool", "80"]))


def test_lr_schedule_steps_and_warms_up():
    assert [lr_factor(i, (3,), 0.1) for i in (0, 2, 3, 9)] == pytest.approx([1, 1, 0.1, 0.1])
    assert [lr_factor(i, (), 0.1, warmup=4) for i in (0, 1, 3, 8)] == pytest.approx([0.25, 0.5, 1, 1])


def test_static_stage_trains_single_object_and_saves_released_layout(data_roots, tmp_path):
    result = run_script("train.py", "--stage", "0", "--static_root", data_roots / "static", "--no_pretrained",
                        "-i", "2", "-b", "2", "--crop_size", "64", "--num_workers", "0", "--save_dir", tmp_path,
                        "--id", "s0")
    assert "done at iteration 2" in result.stdout
    run = next(tmp_path.iterdir())
    weights = torch.load(run / f"{run.name}_2.pth")
    assert weights["value_encoder.conv1.weight"].shape == (64, 4, 7, 7)  # the stage-0 network
    assert (run / "config.json").is_file() and any((run / "logs").iterdir())
    # stage-0 weights continue into main training, widened
    result = run_script("train.py", *_video_args(data_roots, tmp_path / "s3", "-i", "1", "--load_network",
                                                 run / f"{run.name}_2.pth"))
    assert "done at iteration 1" in result.stdout


@pytest.mark.slow
def test_resume_is_exact(data_roots, tmp_path):
    straight = run_script("train.py", *_video_args(data_roots, tmp_path / "a", "-i", "4"))
    stopped = run_script("train.py", *_video_args(data_roots, tmp_path / "b", "-i", "4", "--stop_at", "2"))
    assert "stopped (resume with --resume) at iteration 2" in stopped.stdout
    checkpoint = next((tmp_path / "b").glob("*/*_checkpoint.pth"))
    assert torch.load(checkpoint)["iteration"] == 2
    summary_path = checkpoint.parent / "run_summary.json"  # what the process did, for scripts that run it
    summary = json.loads(summary_path.read_text())
    assert (summary["state"], summary["iteration"], summary["checkpoint"]) == ("stopped", 2, str(checkpoint))
    resumed = run_script("train.py", *_video_args(data_roots, tmp_path / "b", "-i", "4", "--resume", checkpoint,
                                                  "--num_workers", "2"))
    assert "continuing from iteration 2" in resumed.stdout and "done at iteration 4 (2 this run)" in resumed.stdout
    summary = json.loads(summary_path.read_text())
    assert (summary["state"], summary["iteration"], summary["iterations_run"]) == ("done", 4, 2)
    assert summary["network"] == str(checkpoint.parent / f"{summary['run']}_4.pth") and summary["best_network"] is None
    assert _checksums(straight.stdout) == _checksums(resumed.stdout)
    run_a = next((tmp_path / "a").iterdir())
    weights_a = torch.load(run_a / f"{run_a.name}_4.pth")
    weights_b = torch.load(next((tmp_path / "b").glob("*/*_4.pth")))
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


@pytest.mark.slow
def test_stop_at_past_the_schedule_goes_on_in_its_last_phase(data_roots, tmp_path):
    # with a fixed frame gap the samples and the learning rate past -i 4 --steps 2 are those of -i 6 --steps 2
    longer = run_script("train.py", *_video_args(data_roots, tmp_path / "a", "-i", "6", "--steps", "2",
                                                 "--max_jump", "5"))
    past = run_script("train.py", *_video_args(data_roots, tmp_path / "b", "-i", "4", "--steps", "2", "--max_jump",
                                               "5", "--stop_at", "6"))
    assert "done at iteration 6 (6 this run)" in past.stdout
    assert _checksums(past.stdout) == _checksums(longer.stdout)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _torchrun(data_roots, save_dir, port: int, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               *extra, str(ROOT / "train.py"), *map(str, _video_args(data_roots, save_dir, "--device", "cpu", "-i", "6",
                                                                     "--save_every", "2", "--resume", "auto"))]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_torchrun_restart_after_sigkill_continues_exactly(data_roots, tmp_path):
    """A worker killed outright under torchrun --max_restarts: the restarted group resumes (--resume auto) from
    the last checkpoint and ends with the weights of a run never killed."""
    straight = _torchrun(data_roots, tmp_path / "a", 29741)
    out, err = straight.communicate()
    assert straight.returncode == 0, err
    assert "--resume auto: no checkpoint of --id NULL" in out and "2 process(es) x batch 1" in out
    sums = _checksums(out)
    assert len(sums) == 2 and sums[0] == sums[1]  # identical weights on both ranks

    killed = _torchrun(data_roots, tmp_path / "b", 29742, "--max_restarts", "1")
    while not list((tmp_path / "b").glob("*/*_checkpoint.pth")):
        assert killed.poll() is None, killed.communicate()
        time.sleep(0.02)
    workers = _children(killed.pid)
    for worker in workers:  # hold both where they are, so that the kill lands mid-run
        os.kill(worker, signal.SIGSTOP)
    at_kill = torch.load(next((tmp_path / "b").glob("*/*_checkpoint.pth")))["iteration"]
    os.kill(workers[-1], signal.SIGKILL)
    os.kill(workers[0], signal.SIGCONT)
    out, err = killed.communicate(timeout=300)
    assert killed.returncode == 0, err
    assert 2 <= at_kill < 6
    resumed = re.search(r"--resume auto: resuming from (\S+) \(torchrun restart 1\)", out)
    assert resumed, out
    continued = int(re.search(r"continuing from iteration (\d+)", out).group(1))
    assert at_kill <= continued < 6 and "done at iteration 6" in out  # what was killed mid-write is not used
    assert _checksums(out)[-2:] == sums
    runs = list((tmp_path / "b").iterdir())
    assert len(runs) == 1 and not [p for p in runs[0].iterdir() if ".tmp" in p.name]


def _readme_multinode_command(node_rank: int, port: int) -> list[str]:
    """The README's several-machines command, on this machine: endpoint 127.0.0.1, 2 processes per node."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if "--nnodes 2" in line)
    words = line.split()
    assert words[:1] == ["torchrun"] and words[-2:] == ["train.py", "..."], line
    replace = {"--node_rank": str(node_rank), "--nproc_per_node": "2", "--rdzv_endpoint": f"127.0.0.1:{port}"}
    options = [replace.get(words[i - 1], word) for i, word in enumerate(words[1:-2], start=1)]
    return [sys.executable, "-m", "torch.distributed.run", *options]


@pytest.mark.slow
def test_two_nodes_give_the_weights_of_one_launch_of_four_processes(data_roots, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    training = [str(ROOT / "train.py"), *map(str, _video_args(data_roots, tmp_path, "--device", "cpu", "-b", "4",
                                                              "-i", "2"))]
    one = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "4", "--master_port",
                          "29743", *training], cwd=ROOT, capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    assert "4 process(es) x batch 1" in one.stdout
    nodes = [subprocess.Popen(_readme_multinode_command(rank, 29744) + training, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), outputs
    two = "".join(out for out, _ in outputs)
    assert "4 process(es) x batch 1" in two
    sums = _checksums(two)
    assert len(sums) == 4 and set(sums) == set(_checksums(one.stdout)) and len(set(sums)) == 1


def test_batch_must_divide_among_processes(data_roots, tmp_path):
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, _video_args(data_roots, tmp_path))],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "--batch_size 2 (total over all processes) does not divide among 3" in result.stderr


def test_missing_dataset_roots_are_named_before_training(tmp_path):
    result = run_script("train.py", "--stage", "3", "--davis_root", tmp_path / "D", "--yv_root", tmp_path / "Y",
                        "--no_pretrained", "--save_dir", tmp_path, check=False)
    assert result.returncode == 2
    assert str(tmp_path / "D") in result.stderr and str(tmp_path / "Y") in result.stderr
    assert not list(tmp_path.glob("*/config.json"))


def test_offline_imagenet_weights_give_one_message(data_roots, tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "empty")}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--stage", "0", "--static_root",
                             str(data_roots / "static"), "--save_dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--no_pretrained" in result.stderr and "TORCH_HOME" in result.stderr


def test_sigterm_saves_a_checkpoint_to_resume_from(data_roots, tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), *map(str, _video_args(data_roots, tmp_path, "-i", "500"))]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = threading.Event()

    def watch():
        for line in iter(lambda: process.stderr.read(64), ""):
            if "loss=" in line:
                seen.set()

    threading.Thread(target=watch, daemon=True).start()
    assert seen.wait(120), "training did not start"
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert "stopped (resume with --resume)" in stdout
    checkpoint = next(tmp_path.glob("*/*_checkpoint.pth"))
    assert 1 <= torch.load(checkpoint)["iteration"] < 500


def _trainer(**overrides) -> Trainer:
    args = ["--stage", "3", "--no_pretrained", "--crop_size", "64", "-b", "2"]
    config = TrainConfig.from_args(training_parser().parse_args(args))
    return Trainer(config.replaced(**overrides), torch.device("cpu"))


def _batch(data_roots):
    from dataset.sampling import SeededSamples
    from dataset.vos_dataset import davis_train

    samples = SeededSamples(davis_train(data_roots / "DAVIS", crop_size=64))
    items = [samples[(i, 100 + i, 0)] for i in range(2)]
    return {k: torch.stack([item[k] for item in items]) for k in ("rgb", "gt", "sec_gt", "selector")}


def test_loss_falls_when_overfitting_one_batch(data_roots):
    trainer = _trainer(lr=1e-4)
    trainer.train_mode()
    batch = _batch(data_roots)
    losses = [trainer.step(batch)[1]["total_loss"].item() for _ in range(20)]
    assert sum(losses[-4:]) / 4 < 0.6 * sum(losses[:4]) / 4, losses
    assert not any(m.training for m in trainer.network.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_non_finite_losses_skip_steps_then_stop(data_roots):
    trainer = _trainer(max_nonfinite=2)
    trainer.train_mode()
    batch = _batch(data_roots)
    batch["rgb"][:] = float("nan")
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    with pytest.warns(UserWarning, match="non-finite loss"):
        assert trainer.step(batch) is None
    with pytest.warns(UserWarning), pytest.raises(TrainingError, match="not finite for 2 iterations"):
        trainer.step(batch)
    assert all(torch.equal(before[k], v) for k, v in trainer.network.state_dict().items())


def test_cpu_bfloat16_autocast_trains(data_roots):
    trainer = _trainer(cpu_amp=True)
    trainer.train_mode()
    dtypes = []
    trainer.network.decoder.pred.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    out, losses = trainer.step(_batch(data_roots))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert out["logits_1"].dtype == torch.float32 and torch.isfinite(losses["total_loss"])  # aggregation in fp32
    assert trainer.iteration == 1


def test_literal_forward_and_channels_last_flags_reach_the_step(data_roots):
    config = TrainConfig.from_args(training_parser().parse_args(
        ["--stage", "3", "--no_pretrained", "--literal_forward", "--channels_last"]))
    assert config.network.literal_forward and config.network.channels_last
    batch = _batch(data_roots)
    batch["selector"][1, 1] = 0  # the second sample lacks its second object
    losses, decoded = {}, {}
    for name, overrides in {"default": {}, "literal": {"literal_forward": True},
                            "channels_last": {"channels_last": True}}.items():
        trainer = _trainer(**overrides)
        trainer.train_mode()
        calls = []
        trainer.network.decoder.pred.register_forward_hook(lambda module, inputs, output: calls.append(len(output)))
        losses[name] = trainer.forward(trainer.to_device(batch))[1]["total_loss"].item()
        decoded[name] = sum(calls)
        if name == "channels_last":
            assert trainer.network.key_encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert decoded == {"default": 2 * 3, "literal": 2 * 4, "channels_last": 2 * 3}  # 2 query frames x objects
    assert losses["literal"] == pytest.approx(losses["default"], rel=1e-5)
    assert losses["channels_last"] == pytest.approx(losses["default"], rel=1e-5)


def test_yv_subset_flag_reaches_the_training_set(data_roots, tmp_path):
    from training.data import build_dataset

    videos = sorted(p.name for p in (data_roots / "YouTube" / "train_480p" / "JPEGImages").iterdir())
    subset = tmp_path / "subset.txt"
    subset.write_text(videos[0] + "\n")
    base = ["--stage", "3", "--davis_root", str(data_roots / "DAVIS"), "--yv_root", str(data_roots / "YouTube"),
            "--crop_size", "64"]
    whole = build_dataset(TrainConfig.from_args(training_parser().parse_args(base)))
    filtered = build_dataset(TrainConfig.from_args(training_parser().parse_args(base + ["--yv_subset", str(subset)])))
    assert len(whole) - len(filtered) == len(videos) - 1


def test_sample_levers_reach_the_samples_and_the_step():
    from training.data import build_dataset, training_loader

    config = TrainConfig.from_args(training_parser().parse_args(
        ["--stage", "3", "--synthetic", "48", "64", "10", "--no_pretrained", "-b", "2", "--num_workers", "0",
         "--sample_frames", "4", "--max_targets", "1", "--max_jump", "2"]))
    assert (config.data.clip.frames, config.data.clip.max_targets, config.data.max_jump) == (4, 1, 2)
    batch = next(iter(training_loader(build_dataset(config), config, 0, 0, 1, pin_memory=False)))
    assert batch["rgb"].shape[:2] == (2, 4) and (batch["selector"][:, 1] == 0).all()
    frames = [[int(name) for name in per_frame] for per_frame in batch["info"]["frames"]]  # T lists of B
    assert all(1 <= abs(b - a) <= 2 for a_t, b_t in zip(frames, frames[1:]) for a, b in zip(a_t, b_t))
    trainer = _trainer(sample_frames=4, max_targets=1)
    trainer.train_mode()
    out, losses = trainer.step(batch)
    assert set(out) >= {"logits_1", "logits_2", "logits_3"} and torch.isfinite(losses["total_loss"])
    for refused, message in [(["--stage", "0", "--sample_frames", "4"], "for the video stages"),
                             (["--stage", "3", "--synthetic", "48", "64", "3", "--sample_frames", "4"],
                              "videos of 3 frames cannot give --sample_frames 4"),
                             (["--stage", "3", "--sample_frames", "1"], "--sample_frames 1: must be at least 2")]:
        with pytest.raises(InputError, match=re.escape(message)):
            TrainConfig.from_args(training_parser().parse_args(refused))


@pytest.mark.parametrize("flag, value, message", [
    ("--save_every", "0", "--save_every 0: must be at least 1"),
    ("--log_every", "0", "--log_every 0: must be at least 1"),
    ("-i", "0", "--iterations 0: must be at least 1"),
    ("-b", "0", "--batch_size 0: must be at least 1"),
    ("--lr", "-0.001", "--lr -0.001: must be positive"),
    ("--bootstrap_top_p", "1.5", "--bootstrap_top_p 1.5: must be in (0, 1]"),
    ("--crop_size", "8", "--crop_size 8: must be at least 16"),
    ("--num_workers", "-1", "--num_workers -1: must be at least 0"),
])
def test_flag_values_that_make_no_sense_are_refused(flag, value, message):
    with pytest.raises(InputError, match=re.escape(message)):
        TrainConfig.from_args(training_parser().parse_args(["--stage", "3", flag, value]))
    with pytest.raises(InputError, match="needs H and W of at least 16 and 2 frames"):
        TrainConfig.from_args(training_parser().parse_args(["--stage", "3", "--synthetic", "8", "8", "2"]))


def test_train_py_stops_on_a_nonsense_flag_with_one_line(tmp_path):
    result = run_script("train.py", "--stage", "3", "--save_every", "0", "--save_dir", tmp_path, check=False)
    assert result.returncode == 2 and result.stderr.strip() == "error: --save_every 0: must be at least 1"
    assert not any(tmp_path.iterdir())


def test_saved_weights_record_their_largest_memory_similarity_and_note_an_overflow(data_roots, tmp_path, capsys):
    """The authors' evaluation exponentiates similarities without subtracting the maximum: the card says how
    large they get, and a run whose keys go beyond float32's exp() says so once."""
    from model.checkpoint import read_card
    from model.memory import FLOAT32_EXP_LIMIT
    from training.trainer import RunPaths

    trainer = _trainer(lr=0.0)
    trainer.train_mode()
    trainer.step(_batch(data_roots))
    run = RunPaths(tmp_path, "run")
    run.folder.mkdir(exist_ok=True)
    trainer.save(run)
    quiet = read_card(run.network(1))["largest_similarity"]
    assert 0 < quiet < FLOAT32_EXP_LIMIT and "note:" not in capsys.readouterr().out
    with torch.no_grad():
        trainer.network.key_proj.key_proj.weight.mul_(30)  # keys 30 times longer: similarities 900 times larger
        trainer.network.key_proj.key_proj.bias.mul_(30)
    trainer.save(run)
    loud = read_card(run.network(1))["largest_similarity"]
    assert loud == pytest.approx(900 * quiet, rel=1e-3)
    assert "beyond 88.72 where exp() overflows" in capsys.readouterr().out
    trainer.save(run)
    assert "note:" not in capsys.readouterr().out  # once per run
