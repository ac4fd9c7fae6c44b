"""Synthetic video generator and the on-disk layouts written by scripts/make_synthetic.py."""
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dataset import synthetic_layouts
from dataset.synthetic import SHAPES, generate_image, generate_video, sample_rng
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from util.imageio import DAVIS_PALETTE, read_davis_sequences
from util.metrics import evaluate_davis

ROOT = Path(__file__).resolve().parents[2]
SIZE = (64, 96)


def make(tmp_path: Path, layout: str, *extra: str, videos: int = 3, frames: int = 12, seed: int = 0) -> Path:
    """Run the CLI for a small dataset and return its folder."""
    out = tmp_path / layout
    command = [sys.executable, "scripts/make_synthetic.py", "--layout", layout, "--out", str(out),
               "--videos", str(videos), "--frames", str(frames), "--frame_size", *map(str, SIZE), "--objects", "3",
               "--seed", str(seed), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def read_palette_png(path: Path) -> np.ndarray:
    """Labels of a PNG that must be palette mode with the DAVIS palette."""
    with Image.open(path) as image:
        assert image.mode == "P", path
        assert image.getpalette() == DAVIS_PALETTE, path
        return np.array(image)


def presence(labels: np.ndarray, label: int) -> np.ndarray:
    return (labels == label).any(axis=(1, 2))


# ---------------------------------------------------------------- in-memory generator


def test_generate_video_shapes_and_labels():
    video = generate_video(sample_rng(0, 0), 8, SIZE, max_objects=4, min_objects=2)
    assert video.frames.shape == (8, *SIZE, 3) and video.frames.dtype == np.uint8
    assert video.labels.shape == (8, *SIZE) and video.labels.dtype == np.uint8
    count = len(video.categories)
    assert 2 <= count <= 4 and set(video.categories) <= set(SHAPES)
    assert set(np.unique(video.labels)) <= set(range(count + 1))
    # Without entry_step every object is clearly visible on the first frame (DAVIS needs that).
    assert set(np.unique(video.labels[0])) == set(range(count + 1))


def test_object_counts_span_the_range_and_all_shapes_occur():
    videos = [generate_video(sample_rng(1, i), 1, SIZE, max_objects=3) for i in range(20)]
    assert {len(v.categories) for v in videos} == {1, 2, 3}
    assert {c for v in videos for c in v.categories} == set(SHAPES)


def test_generation_is_deterministic_per_seed_and_index():
    first = generate_video(sample_rng(5, 2), 6, SIZE, 3)
    again = generate_video(sample_rng(5, 2), 6, SIZE, 3)
    assert np.array_equal(first.frames, again.frames) and np.array_equal(first.labels, again.labels)
    for other in (sample_rng(5, 3), sample_rng(6, 2), sample_rng(5, 2, "other")):
        assert not np.array_equal(first.frames, generate_video(other, 6, SIZE, 3).frames)


def test_generation_is_fast():
    generate_video(sample_rng(0, 0), 2, (96, 160), 3)  # warm-up (imports, caches)
    start = time.perf_counter()
    generate_video(sample_rng(0, 1), 30, (96, 160), 4)
    assert time.perf_counter() - start < 1.0


def test_objects_stand_out_from_the_background():
    for i in range(8):
        video = generate_video(sample_rng(2, i), 1, SIZE, 3)
        saturation = cv2.cvtColor(video.frames[0], cv2.COLOR_RGB2HSV)[..., 1].astype(float)
        inside = video.labels[0] > 0
        assert saturation[inside].mean() > saturation[~inside].mean() + 20


def test_objects_move_smoothly_and_occlude():
    moved, occluded = False, False
    for i in range(6):
        video = generate_video(sample_rng(3, i), 20, SIZE, 4, min_objects=3)
        left, right = video.labels[:, :, :-1], video.labels[:, :, 1:]
        occluded |= bool(((left != right) & (left > 0) & (right > 0)).any())  # two objects share an edge
        for k in range(1, len(video.categories) + 1):
            ys, xs = [], []
            for t in range(20):
                y, x = np.nonzero(video.labels[t] == k)
                ys.append(y.mean() if len(y) else np.nan)
                xs.append(x.mean() if len(x) else np.nan)
            steps = np.hypot(np.diff(ys), np.diff(xs))
            steps = steps[~np.isnan(steps)]
            assert (steps < 0.3 * np.hypot(*SIZE)).all()
            moved |= steps.size > 0 and steps.max() > 1
    assert moved and occluded


def test_some_objects_leave_the_frame_and_come_back():
    def returns(track: np.ndarray) -> bool:
        on = np.flatnonzero(track)
        return on.size > 0 and not track[on[0]:on[-1] + 1].all()

    found = any(returns(presence(video.labels, k))
                for video in (generate_video(sample_rng(4, i), 24, SIZE, 3, min_objects=2) for i in range(8))
                for k in range(1, len(video.categories) + 1))
    assert found


def test_entry_step_makes_objects_appear_late_on_its_multiples():
    late = 0
    for i in range(6):
        video = generate_video(sample_rng(6, i), 20, SIZE, 3, min_objects=2, entry_step=5)
        firsts = [int(np.argmax(presence(video.labels, k))) for k in range(1, len(video.categories) + 1)]
        assert firsts[0] == 0 and all(t % 5 == 0 for t in firsts)
        assert max(firsts) > 0  # with two objects or more at least one enters late
        late += sum(t > 0 for t in firsts)
    assert late >= 6


def test_generate_image():
    rgb, mask = generate_image(sample_rng(0, 0), SIZE)
    assert rgb.shape == (*SIZE, 3) and rgb.dtype == np.uint8
    assert mask.shape == SIZE and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1}


def test_generate_video_rejects_impossible_requests():
    for kwargs in ({"num_frames": 0}, {"size": (8, 8)}, {"max_objects": 0}, {"min_objects": 4}):
        with pytest.raises(ValueError):
            generate_video(sample_rng(0, 0), **{"num_frames": 3, "size": SIZE, "max_objects": 3, **kwargs})


# ---------------------------------------------------------------- on-disk layouts


def test_davis_layout(tmp_path):
    root = make(tmp_path, "davis", videos=3, frames=6)
    assert names(root) == ["Annotations", "ImageSets", "JPEGImages"]
    sequences = names(root / "JPEGImages" / "480p")
    assert len(sequences) == 3 and names(root / "Annotations" / "480p") == sequences
    for sequence in sequences:
        frames = [f"{t:05d}" for t in range(6)]
        assert names(root / "JPEGImages" / "480p" / sequence) == [f"{f}.jpg" for f in frames]
        assert names(root / "Annotations" / "480p" / sequence) == [f"{f}.png" for f in frames]
        with Image.open(root / "JPEGImages" / "480p" / sequence / "00003.jpg") as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (SIZE[1], SIZE[0])
        first = read_palette_png(root / "Annotations" / "480p" / sequence / "00000.png")
        assert first.shape == SIZE
        count = int(first.max())
        assert set(np.unique(first)) == set(range(count + 1))  # DAVIS ids are 1..K, all on the first frame
        for t in range(1, 6):
            later = read_palette_png(root / "Annotations" / "480p" / sequence / f"{t:05d}.png")
            assert later.max() <= count
    for year in ("2016", "2017"):
        train = (root / "ImageSets" / year / "train.txt").read_text().split()
        val = (root / "ImageSets" / year / "val.txt").read_text().split()
        assert val and train and set(train) | set(val) == set(sequences) and not set(train) & set(val)


def test_davis2016_layout_is_the_release_and_reads_back(tmp_path):
    root = make(tmp_path, "davis2016", videos=4, frames=5)
    assert names(root) == ["Annotations", "ImageSets", "JPEGImages"]
    lines = (root / "ImageSets" / "480p" / "val.txt").read_text().splitlines()
    sequence = lines[0].split("/")[3]
    assert lines[0] == f"/JPEGImages/480p/{sequence}/00000.jpg /Annotations/480p/{sequence}/00000.png"
    assert len(lines) == 5 and read_davis_sequences(root, "val", 2016) == [sequence]
    with Image.open(root / "Annotations" / "480p" / sequence / "00000.png") as mask:
        values = np.unique(np.asarray(mask))
        assert mask.mode == "L" and set(values) <= {0, 255} and 255 in values  # one object, as released
    assert evaluate_davis(root, root / "Annotations" / "480p", "val", 2016, progress=False)["J&F-Mean"] == 1.0


def test_youtube_layout(tmp_path):
    frames = 17
    root = make(tmp_path, "youtube", videos=4, frames=frames)
    assert names(root) == ["all_frames", "train", "valid"]
    every_fifth = [f"{t:05d}" for t in range(0, frames, 5)]
    assert every_fifth == ["00000", "00005", "00010", "00015"]

    train_meta = json.loads((root / "train" / "meta.json").read_text())["videos"]
    assert len(train_meta) == 4
    for video, entry in train_meta.items():
        assert names(root / "train" / "JPEGImages" / video) == [f"{f}.jpg" for f in every_fifth]
        assert names(root / "train" / "Annotations" / video) == [f"{f}.png" for f in every_fifth]
        labels = {f: read_palette_png(root / "train" / "Annotations" / video / f"{f}.png") for f in every_fifth}
        present = set(np.unique(np.stack(list(labels.values())))) - {0}
        assert present == {int(i) for i in entry["objects"]}
        for object_id, info in entry["objects"].items():
            assert info["category"] in SHAPES
            assert info["frames"] == [f for f in every_fifth if (labels[f] == int(object_id)).any()]

    valid_meta = json.loads((root / "valid" / "meta.json").read_text())["videos"]
    late = 0
    for video, entry in valid_meta.items():
        assert names(root / "valid" / "JPEGImages" / video) == [f"{f}.jpg" for f in every_fifth]
        all_frames = root / "all_frames" / "valid_all_frames" / "JPEGImages" / video
        assert names(all_frames) == [f"{t:05d}.jpg" for t in range(frames)]
        objects = {int(i): info for i, info in entry["objects"].items()}
        first = {i: info["frames"][0] for i, info in objects.items()}
        for i, info in objects.items():
            assert info["frames"] == every_fifth[every_fifth.index(first[i]):]
            assert all((root / "valid" / "JPEGImages" / video / f"{f}.jpg").is_file() for f in info["frames"])
        late += sum(f != "00000" for f in first.values())
        annotated = names(root / "valid" / "Annotations" / video)
        assert annotated == sorted(f"{f}.png" for f in set(first.values()))
        for name in annotated:
            labels = read_palette_png(root / "valid" / "Annotations" / video / name)
            assert set(np.unique(labels)) - {0} == {i for i, f in first.items() if f"{f}.png" == name}
    assert late > 0
    for entry in [*train_meta.values(), *valid_meta.values()]:  # ids skip numbers, as YouTubeVOS ids may
        ids = sorted(map(int, entry["objects"]))
        assert ids != list(range(1, len(ids) + 1))


def test_static_layout(tmp_path):
    root = make(tmp_path, "static", "--fss_classes", "2", videos=3)
    assert names(root) == sorted(["fss", *synthetic_layouts.STATIC_FOLDERS])
    classes = names(root / "fss")
    assert len(classes) == 2
    pairs = [(root / "fss" / c, n) for c in classes for n in ("1", "2", "3")]
    assert names(root / "fss" / classes[0]) == ["1.jpg", "1.png", "2.jpg", "2.png", "3.jpg", "3.png"]
    for folder in synthetic_layouts.STATIC_FOLDERS:
        stems = sorted({p.stem for p in (root / folder).iterdir()})
        assert len(stems) == 3
        assert names(root / folder) == sorted([f"{s}.jpg" for s in stems] + [f"{s}.png" for s in stems])
        pairs += [(root / folder, s) for s in stems]
    for folder, stem in pairs:
        with Image.open(folder / f"{stem}.jpg") as image:
            assert image.mode == "RGB" and image.size == (SIZE[1], SIZE[0])
        with Image.open(folder / f"{stem}.png") as mask:
            assert mask.mode == "L" and mask.size == (SIZE[1], SIZE[0])
            assert set(np.unique(np.array(mask))) == {0, 255}


def test_bl30k_layout(tmp_path):
    root = make(tmp_path, "bl30k", videos=2, frames=4)
    assert names(root) == ["Annotations", "JPEGImages"]
    videos = names(root / "JPEGImages")
    assert len(videos) == 2 and names(root / "Annotations") == videos
    for video in videos:
        assert names(root / "JPEGImages" / video) == [f"{t:05d}.jpg" for t in range(4)]
        assert names(root / "Annotations" / video) == [f"{t:05d}.png" for t in range(4)]
        assert read_palette_png(root / "Annotations" / video / "00000.png").max() >= 1


def test_cli_output_is_deterministic_and_independent_of_count(tmp_path):
    one = make(tmp_path / "a", "davis", videos=2, frames=3, seed=7)
    two = make(tmp_path / "b", "davis", videos=3, frames=3, seed=7)
    other = make(tmp_path / "c", "davis", videos=2, frames=3, seed=8)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.suffix in (".png", ".jpg"))
    assert len(files) == 12
    for relative in files:
        assert (one / relative).read_bytes() == (two / relative).read_bytes()
    assert any((one / r).read_bytes() != (other / r).read_bytes() for r in files if r.suffix == ".png")


def test_cli_replaces_output_and_rejects_bad_arguments(tmp_path):
    out = tmp_path / "bl30k"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    make(tmp_path, "bl30k", videos=1, frames=2)
    assert names(out) == ["Annotations", "JPEGImages"]
    for bad in (["--videos", "0"], ["--frame_size", "8", "8"], ["--size", "8", "8"], ["--objects", "0"],
                ["--layout", "kitti"]):
        command = [sys.executable, "scripts/make_synthetic.py", "--layout", "davis", "--out", str(tmp_path / "x"),
                   *bad]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "error" in done.stderr
    assert not (tmp_path / "x").exists()
    command = [sys.executable, "scripts/make_synthetic.py", "--layout", "davis", "--out", str(tmp_path / "y"),
               "--videos", "1", "--frames", "2", "--objects", "1", "--size", "32", "48"]
    renamed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert renamed.returncode == 0 and "note: --size is now --frame_size" in renamed.stderr  # the old name still works
    assert next((tmp_path / "y" / "JPEGImages" / "480p").iterdir()).joinpath("00000.jpg").is_file()


def test_failed_generation_leaves_no_output(tmp_path, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return generate_video(*args, **kwargs)

    monkeypatch.setattr(synthetic_layouts, "generate_video", failing)
    spec = SyntheticSpec(videos=3, frames=2, size=SIZE, max_objects=2, progress=False)
    with pytest.raises(RuntimeError):
        write_layout("davis", tmp_path / "davis", spec)
    assert names(tmp_path) == []
