"""Test-time augmentation and ensembles: --flip, --save_scores, merge_scores.py, backbone variants."""
import json
import zipfile

import numpy as np
import pytest
import torch
from eval_helpers import run_script
from PIL import Image

from inference.merge import merge_frame
from util.imageio import read_indexed_png, write_indexed_png


def _davis_run(weights, davis_root, out, *extra):
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out, "--save_scores",
               *extra)
    return out


def _labels(folder):
    return {p.relative_to(folder): read_indexed_png(p)[0] for p in sorted(folder.rglob("*.png"))}


def test_merging_copies_of_one_run_gives_that_run(weights, davis_root, tmp_path):
    run = _davis_run(weights, davis_root, tmp_path / "run")
    merged = tmp_path / "merged"
    result = run_script("scripts/merge_scores.py", "--inputs", run, run, run, "--output", merged, "--zip")
    assert "merged 3 runs" in result.stdout
    ours, theirs = _labels(merged), {k: v for k, v in _labels(run).items()}
    assert ours.keys() == theirs.keys()
    for name, labels in ours.items():
        video, frame = name.parts
        single, ids = merge_frame([run / "scores" / video / frame.replace(".png", ".npz")])
        assert np.array_equal(labels, np.array([0] + ids, np.uint8)[single.argmax(0).numpy()])  # exactly
        assert (labels == theirs[name]).mean() > 0.99  # up to ties under uint8 quantisation
    assert set(zipfile.ZipFile(merged / "submission.zip").namelist()) == {str(k) for k in ours}


def test_flip_averaging_of_a_mirror_symmetric_clip_is_symmetric(weights, tmp_path):
    gen = np.random.default_rng(0)
    data = tmp_path / "sym"
    (data / "JPEGImages" / "clip").mkdir(parents=True)
    half = gen.integers(0, 255, (64, 48, 3), dtype=np.uint8)
    for t in range(5):
        frame = np.roll(half, t, axis=0)
        mirrored = np.concatenate([frame, frame[:, ::-1]], axis=1)
        Image.fromarray(mirrored).save(data / "JPEGImages" / "clip" / f"{t:05d}.png")
    mask = np.zeros((64, 96), np.uint8)
    mask[20:40, 30:66] = 1  # symmetric about the vertical centre line
    write_indexed_png(data / "Annotations" / "clip" / "00000.png", mask)
    outputs = []
    for flip in ([], ["--flip"]):
        out = tmp_path / f"out{len(flip)}"
        run_script("eval_generic.py", "--model", weights, "--data_path", data, "--output", out, "--save_scores", *flip)
        outputs.append(out)
    for t in range(1, 5):
        plain, _ = merge_frame([outputs[0] / "scores" / "clip" / f"{t:05d}.npz"])
        flipped, _ = merge_frame([outputs[1] / "scores" / "clip" / f"{t:05d}.npz"])
        torch.testing.assert_close(flipped, plain.flip(-1), atol=1 / 255, rtol=0)  # the flip run mirrors
        averaged, _ = merge_frame([outputs[0] / "scores" / "clip" / f"{t:05d}.npz",
                                   outputs[1] / "scores" / "clip" / f"{t:05d}.npz"])
        torch.testing.assert_close(averaged, averaged.flip(-1), atol=1 / 255, rtol=0)


def test_youtube_scores_merge_with_ids_frames_and_zip(weights, youtube_root, tmp_path):
    runs = []
    for size in ("48", "64"):  # two scales
        out = tmp_path / f"yv{size}"
        run_script("eval_youtube.py", "--model", weights, "--yv_path", youtube_root, "--output", out, "--size", size,
                   "--save_scores")
        runs.append(out)
    merged = tmp_path / "merged"
    run_script("scripts/merge_scores.py", "--inputs", *runs, "--output", merged, "--zip")
    meta = json.loads((youtube_root / "valid" / "meta.json").read_text())["videos"]
    for name, video in meta.items():
        asked = sorted({f for obj in video["objects"].values() for f in obj["frames"]})
        assert sorted(p.stem for p in (merged / "Annotations" / name).iterdir()) == asked
        for frame in asked:
            labels = read_indexed_png(merged / "Annotations" / name / f"{frame}.png")[0]
            assert set(np.unique(labels)) - {0} <= {int(i) for i in video["objects"]}
    assert all(n.startswith("Annotations/") for n in zipfile.ZipFile(merged / "submission.zip").namelist())


def test_merge_refuses_runs_that_do_not_match(weights, davis_root, youtube_root, tmp_path):
    davis_run = _davis_run(weights, davis_root, tmp_path / "d")
    other = tmp_path / "d_missing"
    _davis_run(weights, davis_root, other)
    missing = sorted(p for p in (other / "scores").iterdir() if p.is_dir())[0]
    for path in missing.iterdir():
        path.unlink()
    missing.rmdir()
    result = run_script("scripts/merge_scores.py", "--inputs", davis_run, other, "--output", tmp_path / "m",
                        check=False)
    assert result.returncode == 2 and f"{other}: its videos differ" in result.stderr and missing.name in result.stderr
    frame = next(p for p in (davis_run / "scores").rglob("00003.npz"))
    frame.unlink()
    result = run_script("scripts/merge_scores.py", "--inputs", davis_run, davis_run, "--output", tmp_path / "m2",
                        check=False)
    assert result.returncode == 2 and f"{frame}: missing frame scores" in result.stderr
    no_scores = tmp_path / "plain"
    no_scores.mkdir()
    result = run_script("scripts/merge_scores.py", "--inputs", no_scores, "--output", tmp_path / "m3", check=False)
    assert result.returncode == 2 and "--save_scores" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["wide_resnet50", "wide_resnet50_aspp"])
def test_backbone_variant_trains_saves_reloads_without_flags_and_evaluates(backbone, davis_root, tmp_path):
    data = tmp_path / "data"
    (data / "DAVIS").mkdir(parents=True)
    (data / "DAVIS" / "2017").symlink_to(davis_root)
    (data / "YouTube" / "train_480p").mkdir(parents=True)  # a tiny YouTube set: reuse the DAVIS videos
    for kind in ("JPEGImages", "Annotations"):
        (data / "YouTube" / "train_480p" / kind).symlink_to(davis_root / "trainval" / kind / "480p")
    result = run_script("train.py", "--stage", "3", "--backbone", backbone, "--davis_root", data / "DAVIS",
                        "--yv_root", data / "YouTube", "--no_pretrained", "-i", "1", "-b", "1", "--crop_size", "64",
                        "--num_workers", "0", "--save_dir", tmp_path / "saves")
    assert "done at iteration 1" in result.stdout
    weights = next((tmp_path / "saves").glob("*/*_1.pth"))
    out = tmp_path / "out"
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis_root, "--output", out)  # no --backbone
    assert len(list(out.rglob("*.png"))) == 6 * len((davis_root / "trainval" / "ImageSets" / "2017" / "val.txt")
                                                     .read_text().split())
    resumed = run_script("train.py", "--stage", "3", "--davis_root", data / "DAVIS", "--yv_root", data / "YouTube",
                         "--no_pretrained", "-i", "2", "-b", "1", "--crop_size", "64", "--num_workers", "0",
                         "--resume", next((tmp_path / "saves").glob("*/*_checkpoint.pth")))
    assert f"holds a {backbone} key encoder" in resumed.stdout and "done at iteration 2" in resumed.stdout
