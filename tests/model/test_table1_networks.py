"""The Table 1 networks through the entry scripts: STM in every training stage, exact resume, torchrun,
evaluation on the DAVIS and YouTubeVOS layouts with score merging; the recorded similarity; no CBAM."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from eval_helpers import ROOT, run_script

from util.imageio import read_indexed_png


def _train(data_roots, save_dir, stage, *extra, check=True):
    return run_script("train.py", "--stage", str(stage), "--static_root", data_roots / "static",
                      "--bl_root", data_roots / "BL30K", "--davis_root", data_roots / "DAVIS",
                      "--yv_root", data_roots / "YouTube", "--no_pretrained", "-b", "2", "--crop_size", "64", "--num_workers", "0", "--save_dir",
                      save_dir, *extra, check=check)


def _weights(save_dir, iteration):
    return next(save_dir.glob(f"*/*_{iteration}.pth"))


def _checksum(output: str) -> str:
    return next(line.split("checksum ")[1] for line in output.splitlines() if "parameter checksum" in line)


@pytest.fixture(scope="module")
def stm_weights(data_roots, tmp_path_factory):
    """STM through stages 0 -> 1 -> 2 (the arch taken from the weights), each for two iterations."""
    saves = tmp_path_factory.mktemp("stm_saves")
    result = _train(data_roots, saves / "s0", 0, "--arch", "stm", "-i", "2")
    assert "done at iteration 2" in result.stdout
    s0 = _weights(saves / "s0", 2)
    assert torch.load(s0)["memory_encoder.trunk.conv1.weight"].shape == (64, 4, 7, 7)  # single-object STM
    card = json.loads((s0.parent / (s0.name + ".json")).read_text())
    assert (card["arch"], card["similarity"]) == ("stm", "dot")  # STM's own similarity by default
    _train(data_roots, saves / "s1", 1, "--arch", "stm", "-i", "2", "--load_network", s0)  # widened
    s1 = _weights(saves / "s1", 2)
    assert torch.load(s1)["memory_encoder.trunk.conv1.weight"].shape == (64, 5, 7, 7)
    result = _train(data_roots, saves / "s2", 2, "-i", "2", "--load_network", s1)  # no --arch: from the weights
    assert "done at iteration 2" in result.stdout
    assert json.loads(next((saves / "s2").glob("*/config.json")).read_text())["arch"] == "stm"
    for checkpoint in saves.glob("*/*/*_checkpoint.pth"):  # ~1 GB each; the tests need the weights only
        checkpoint.unlink()
    return _weights(saves / "s2", 2)


@pytest.mark.slow
def test_stm_resumes_exactly(data_roots, tmp_path):
    straight = _train(data_roots, tmp_path / "a", 3, "--arch", "stm", "-i", "3")
    _train(data_roots, tmp_path / "b", 3, "--arch", "stm", "-i", "3", "--stop_at", "1")
    checkpoint = next((tmp_path / "b").glob("*/*_checkpoint.pth"))
    resumed = _train(data_roots, tmp_path / "b", 3, "-i", "3", "--resume", checkpoint)
    assert "continuing from iteration 1" in resumed.stdout
    assert _checksum(straight.stdout) == _checksum(resumed.stdout)


@pytest.mark.slow
def test_stm_trains_under_torchrun(data_roots, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29743",
               str(ROOT / "train.py"), "--stage", "3", "--arch", "stm", "--davis_root", str(data_roots / "DAVIS"),
               "--yv_root", str(data_roots / "YouTube"), "--no_pretrained", "-b", "2", "--crop_size", "64",
               "--num_workers", "0", "-i", "2", "--device", "cpu", "--save_dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    sums = [line.split("checksum ")[1] for line in result.stdout.splitlines() if "parameter checksum" in line]
    assert len(sums) == 2 and sums[0] == sums[1]


@pytest.mark.slow
def test_a_contradicting_arch_stops_with_a_message(data_roots, stm_weights, tmp_path):
    result = _train(data_roots, tmp_path, 3, "--arch", "stcn", "-i", "1", "--load_network", stm_weights, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{stm_weights}: holds an STM network; --arch stcn cannot load it" in result.stderr


@pytest.mark.slow
def test_stm_evaluates_on_davis_and_youtube_and_merges(data_roots, stm_weights, tmp_path):
    davis = data_roots / "DAVIS" / "2017"
    out = tmp_path / "d17"
    result = run_script("eval_davis.py", "--model", stm_weights, "--davis_path", davis, "--output", out,
                        "--evaluate", "--include_last")
    assert "STM, dot similarity" in result.stdout and "J&F-Mean" in result.stdout
    val = (davis / "trainval" / "ImageSets" / "2017" / "val.txt").read_text().split()
    assert len(list(out.rglob("*.png"))) == 10 * len(val)
    runs = []
    for size in ("48", "64"):
        yv = tmp_path / f"yv{size}"
        run_script("eval_youtube.py", "--model", stm_weights, "--yv_path", data_roots / "YT_full", "--output", yv,
                   "--size", size, "--save_scores")
        runs.append(yv)
    merged = tmp_path / "merged"
    run_script("scripts/merge_scores.py", "--inputs", *runs, "--output", merged)
    meta = json.loads((data_roots / "YT_full" / "valid" / "meta.json").read_text())["videos"]
    late = 0
    for name, video in meta.items():
        starts = {obj: min(o["frames"]) for obj, o in video["objects"].items()}
        late += len(set(starts.values())) > 1
        asked = sorted({f for obj in video["objects"].values() for f in obj["frames"]})
        assert sorted(p.stem for p in (merged / "Annotations" / name).iterdir()) == asked
        last = read_indexed_png(merged / "Annotations" / name / f"{asked[-1]}.png")[0]
        assert set(np.unique(last)) - {0} <= {int(i) for i in video["objects"]}
    assert late, "the generated YouTubeVOS set should have objects that appear later"


@pytest.mark.slow
def test_similarity_is_taken_from_the_card_and_a_contradiction_stops(data_roots, tmp_path):
    _train(data_roots, tmp_path / "dot", 3, "--similarity", "dot", "--no_cbam", "-i", "1")
    weights = _weights(tmp_path / "dot", 1)
    assert not any(".attention." in k for k in torch.load(weights))
    davis = data_roots / "DAVIS" / "2017"
    implicit = run_script("eval_davis.py", "--model", weights, "--davis_path", davis, "--output", tmp_path / "i")
    assert "STCN, dot similarity, resnet50 key encoder, no CBAM" in implicit.stdout
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis, "--output", tmp_path / "e",
               "--similarity", "dot")
    for path in sorted((tmp_path / "e").rglob("*.png")):
        assert np.array_equal(read_indexed_png(path)[0],
                              read_indexed_png(tmp_path / "i" / path.relative_to(tmp_path / "e"))[0])
    result = run_script("eval_davis.py", "--model", weights, "--davis_path", davis, "--output", tmp_path / "c",
                        "--similarity", "l2", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"trained with --similarity dot (recorded in {weights}.json); --similarity l2 contradicts it" in result.stderr
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").rglob("*.png"))


def test_stm_trains_under_bfloat16_autocast(data_roots):
    from dataset.sampling import SeededSamples
    from dataset.vos_dataset import davis_train
    from training.config import TrainConfig, training_parser
    from training.trainer import Trainer

    config = TrainConfig.from_args(training_parser().parse_args(
        ["--stage", "3", "--arch", "stm", "--no_pretrained", "--crop_size", "64", "-b", "2", "--cpu_amp"]))
    trainer = Trainer(config, torch.device("cpu"))
    trainer.train_mode()
    samples = SeededSamples(davis_train(data_roots / "DAVIS", crop_size=64))
    items = [samples[(i, 100 + i, 0)] for i in range(2)]
    batch = {k: torch.stack([item[k] for item in items]) for k in ("rgb", "gt", "sec_gt", "selector")}
    dtypes = []
    trainer.network.memory_encoder.register_forward_hook(lambda module, inputs, output: dtypes.append(output[0].dtype))
    out, losses = trainer.step(batch)
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the per-object ResNet-50 runs in bf16
    assert out["logits_1"].dtype == torch.float32 and torch.isfinite(losses["total_loss"])
    assert trainer.iteration == 1
