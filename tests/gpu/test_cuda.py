"""The GPU path: AMP training with the scaler, CUDA evaluation against the CPU, NCCL under torchrun, and
the paper's 11 GB memory claims. Skipped without a GPU; `make test-gpu` runs them (and prints the
memory figures)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from eval_helpers import ROOT

from dataset.sampling import SeededSamples
from dataset.synthetic import generate_video
from dataset.synthetic_online import SyntheticVideoDataset
from inference.core import InferenceCore, MemorySchedule
from inference.reference import segment_reference_clip
from model.checkpoint import prepare_for_inference
from model.network import STCN
from training.config import TrainConfig, training_parser
from training.trainer import RunPaths, Trainer
from util.distributed import autocast
from util.preprocess import normalise

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make test-gpu)")]
GPU_BUDGET_BYTES = 11 * 10**9  # the paper's GPUs (training on two of them, evaluation on one)
CUDA = torch.device("cuda", 0)


def _trainer(amp: bool, batch: int = 2, crop: int = 64) -> Trainer:
    flags = ["--stage", "3", "--no_pretrained", "-b", str(batch), "--crop_size", str(crop), "--device", "cuda",
             "--lr", "1e-5"] + ([] if amp else ["--no_amp"])
    return Trainer(TrainConfig.from_args(training_parser().parse_args(flags)), CUDA)


def _batch(batch: int, size: tuple[int, int], crop: int) -> dict:
    samples = SeededSamples(SyntheticVideoDataset(size, 8, crop_size=crop))
    return torch.utils.data.default_collate([samples[(i, 100 + i, 0)] for i in range(batch)])


def test_amp_training_step_is_finite_close_to_fp32_and_its_scaler_resumes_exactly(tmp_path):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    batch = _batch(2, (64, 64), 64)
    amp, fp32 = _trainer(amp=True), _trainer(amp=False)  # the same seed: the same initial weights
    assert amp.use_amp and not fp32.use_amp
    for trainer in (amp, fp32):
        trainer.train_mode()
    with torch.no_grad():
        amp_loss = amp.forward(amp.to_device(batch))[1]["total_loss"].float()
        fp32_loss = fp32.forward(fp32.to_device(batch))[1]["total_loss"]
    assert torch.isfinite(amp_loss) and torch.isfinite(fp32_loss)
    torch.testing.assert_close(amp_loss, fp32_loss, rtol=2e-2, atol=1e-3)  # fp16 autocast, same batch

    for _ in range(2):
        assert amp.step(batch) is not None  # finite, stepped (the scaler found no inf)
    assert amp.scaler.get_scale() > 1  # fp16 gradient scaling is really on
    run = RunPaths(tmp_path, "amp")
    amp.save(run, network_too=False)
    resumed = _trainer(amp=True)
    resumed.load(run.checkpoint)
    assert resumed.scaler.state_dict() == amp.scaler.state_dict() and resumed.iteration == amp.iteration
    for mine, theirs in zip(amp.network.parameters(), resumed.network.parameters()):
        assert torch.equal(mine, theirs)
    mine, theirs = amp.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert mine.keys() == theirs.keys()
    for key in mine:
        for name, value in mine[key].items():
            assert torch.equal(torch.as_tensor(value).cpu(), torch.as_tensor(theirs[key][name]).cpu()), name
    resumed.train_mode()
    amp.step(batch)
    resumed.step(batch)  # the same step again (CUDA atomics may differ in the last bits: one Adam step is <= lr)
    for mine, theirs in zip(amp.network.parameters(), resumed.network.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=2e-5)
    assert resumed.scaler.get_scale() == amp.scaler.get_scale()


def test_cuda_evaluation_gives_the_cpu_masks(deterministic_stcn, reference_dir, monkeypatch):
    # fp32 means fp32: TF32 convolutions (cuDNN's default on Ampere and later) round like fp16 does
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cpu = segment_reference_clip(prepare_for_inference(deterministic_stcn, torch.device("cpu")), reference_dir)
    network = prepare_for_inference(deterministic_stcn, CUDA)
    fp32 = segment_reference_clip(network, reference_dir)
    assert cpu["label_agreement"] >= 0.999 and fp32["label_agreement"] >= 0.999
    assert abs(fp32["mean_abs_diff"] - cpu["mean_abs_diff"]) < 1e-4
    with autocast(CUDA, True):  # fp16
        fp16 = segment_reference_clip(network, reference_dir)
    # The deterministic weights leave most pixels near 0.5, so fp16 rounding flips many labels (measured
    # with fp16 autocast on the CPU: agreement 0.69, mean probability error 0.010); broken fp16 kernels or
    # an overflow give errors ten times larger or NaN.
    assert np.isfinite(fp16["mean_abs_diff"]) and fp16["mean_abs_diff"] < 0.03
    print(f"\nreference clip, label agreement with the authors': CPU {cpu['label_agreement']:.5f}, "
          f"CUDA fp32 {fp32['label_agreement']:.5f}, CUDA fp16 {fp16['label_agreement']:.5f}")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_torchrun_with_nccl_keeps_two_gpus_in_sync(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29751",
               str(ROOT / "train.py"), "--stage", "3", "--synthetic", "64", "64", "8", "--no_pretrained", "-b", "4",
               "--crop_size", "64", "--num_workers", "0", "-i", "3", "--device", "cuda", "--save_dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 0, result.stderr
    sums = re.findall(r"parameter checksum (\S+)", result.stdout)
    assert len(sums) == 2 and sums[0] == sums[1]


def _peak(device: torch.device) -> int:
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def test_a_480p_three_object_davis_length_evaluation_fits_11_gb():
    torch.cuda.reset_peak_memory_stats(CUDA)
    torch.manual_seed(0)
    network = prepare_for_inference(STCN(), CUDA)
    core = InferenceCore(network, MemorySchedule(mem_every=5, top_k=20))
    clip = generate_video(np.random.default_rng(0), 20, (480, 854), 3, min_objects=3)
    frames = 80  # a long DAVIS 2017 val sequence
    for t in range(frames):
        cycle = t % 38
        frame = clip.frames[cycle if cycle < 20 else 38 - cycle]
        core.step(normalise(frame), clip.labels[0] if t == 0 else None, is_last=t == frames - 1)
    peak = _peak(CUDA)
    print(f"\n480p, 3 objects, {frames} frames, memory every 5th: peak CUDA memory {peak / 2**30:.2f} GiB")
    assert len(core.object_ids) == 3 and peak < GPU_BUDGET_BYTES


def test_a_stage3_iteration_at_the_papers_batch_and_crop_fits_11_gb():
    torch.cuda.reset_peak_memory_stats(CUDA)
    trainer = _trainer(amp=True, batch=4, crop=384)  # per GPU: batch 8 over two GPUs
    trainer.train_mode()
    batch = _batch(4, (384, 682), 384)
    for _ in range(2):
        assert trainer.step(batch) is not None
    peak = _peak(CUDA)
    print(f"\nstage 3, batch 4, crop 384, AMP: peak CUDA memory {peak / 2**30:.2f} GiB")
    assert peak < GPU_BUDGET_BYTES
