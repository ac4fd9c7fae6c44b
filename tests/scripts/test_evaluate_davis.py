"""scripts/evaluate_davis.py and util.metrics.evaluate_davis on a tiny hand-made DAVIS folder."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.synthetic_layouts import SyntheticSpec, write_layout
from util.fileio import InputError
from util.imageio import read_indexed_png, write_indexed_png
from util.metrics import evaluate_davis

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (40, 60)
FRAMES = 5
OUTPUTS = ("global_results-val.csv", "per-sequence_results-val.csv", "results.json")


def alpha_labels() -> np.ndarray:
    """Two objects."""
    labels = np.zeros(SHAPE, np.uint8)
    labels[5:15, 5:15] = 1
    labels[20:30, 30:45] = 2
    return labels


def beta_labels() -> np.ndarray:
    """One object."""
    labels = np.zeros(SHAPE, np.uint8)
    labels[10:25, 20:40] = 1
    return labels


@pytest.fixture
def davis(tmp_path: Path) -> Path:
    """DAVIS folder: sequences alpha (2 objects) and beta (1 object), 5 frames each, val = both."""
    root = tmp_path / "DAVIS"
    for name, labels in (("alpha", alpha_labels()), ("beta", beta_labels())):
        for t in range(FRAMES):
            write_indexed_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", labels)
    for year in ("2016", "2017"):
        (root / "ImageSets" / year).mkdir(parents=True)
        (root / "ImageSets" / year / "val.txt").write_text("alpha\nbeta\n")
    return root


def perfect_results(davis: Path, out: Path) -> Path:
    shutil.copytree(davis / "Annotations" / "480p", out)
    return out


def run(davis: Path, results: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "scripts/evaluate_davis.py", "--davis_path", str(davis), "--results", str(results),
               *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_perfect_results(davis, tmp_path):
    results = perfect_results(davis, tmp_path / "results")
    done = run(davis, results)
    assert done.returncode == 0, done.stderr
    assert "Global results for val" in done.stdout and "beta_1" in done.stdout
    assert (results / "global_results-val.csv").read_text() == (
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
        "1.000,1.000,1.000,0.000,1.000,1.000,0.000\n")
    assert (results / "per-sequence_results-val.csv").read_text() == (
        "Sequence,J-Mean,F-Mean\nalpha_1,1.000,1.000\nalpha_2,1.000,1.000\nbeta_1,1.000,1.000\n")
    numbers = json.loads((results / "results.json").read_text())
    assert numbers["J&F-Mean"] == 1.0 and numbers["per_object"] == {
        "alpha_1": [1.0, 1.0], "alpha_2": [1.0, 1.0], "beta_1": [1.0, 1.0]}


def test_crafted_results_mean_recall_decay(davis, tmp_path):
    # beta is right on the evaluated frames 1 and 2 and empty on frame 3: J = F = [1, 1, 0], so mean and recall
    # 2/3 and decay (first bin frames 1-2, last bin frame 3) 1. With alpha perfect, the global means over the
    # three objects are 8/9 and the decays 1/3.
    results = perfect_results(davis, tmp_path / "results")
    write_indexed_png(results / "beta" / "00003.png", np.zeros(SHAPE, np.uint8))
    numbers = evaluate_davis(davis, results, workers=1, progress=False)
    assert numbers["per_object"]["beta_1"] == pytest.approx([2 / 3, 2 / 3])
    for measure in ("J", "F"):
        assert numbers[f"{measure}-Mean"] == pytest.approx(8 / 9)
        assert numbers[f"{measure}-Recall"] == pytest.approx(8 / 9)
        assert numbers[f"{measure}-Decay"] == pytest.approx(1 / 3)
    assert (results / "global_results-val.csv").read_text().splitlines()[1] == \
        "0.889,0.889,0.889,0.333,0.889,0.889,0.333"
    assert json.loads((results / "results.json").read_text())["J-Decay"] == numbers["J-Decay"]


def test_first_and_last_frames_are_not_needed(davis, tmp_path):
    results = perfect_results(davis, tmp_path / "results")
    for name in ("alpha", "beta"):
        (results / name / "00000.png").unlink()
        write_indexed_png(results / name / f"{FRAMES - 1:05d}.png", np.full(SHAPE, 2, np.uint8))
    assert evaluate_davis(davis, results, workers=1, progress=False)["J&F-Mean"] == 1.0


def test_2016_merges_objects(davis, tmp_path):
    # Swapping alpha's two labels scores 0 per object in 2017 but 1 once all objects are merged (2016).
    results = perfect_results(davis, tmp_path / "results")
    for t in range(FRAMES):
        labels = read_indexed_png(results / "alpha" / f"{t:05d}.png")[0]
        write_indexed_png(results / "alpha" / f"{t:05d}.png", np.choose(labels, [0, 2, 1]).astype(np.uint8))
    numbers_2017 = evaluate_davis(davis, results, workers=1, progress=False)
    assert numbers_2017["per_object"]["alpha_1"] == [0.0, 0.0]
    done = run(davis, results, "--year", "2016", "--workers", "1")
    assert done.returncode == 0, done.stderr
    numbers_2016 = json.loads((results / "results.json").read_text())
    assert numbers_2016["per_object"] == {"alpha_1": [1.0, 1.0], "beta_1": [1.0, 1.0]}
    assert numbers_2016["J&F-Mean"] == 1.0


def test_void_label_counts_as_background_like_the_toolkit(davis, tmp_path):
    labels = beta_labels()
    labels[:, 45:] = 255
    for t in range(FRAMES):
        write_indexed_png(davis / "Annotations" / "480p" / "beta" / f"{t:05d}.png", labels)
    results = perfect_results(davis, tmp_path / "results")
    prediction = np.where(labels == 255, 0, labels).astype(np.uint8)
    for t in range(FRAMES):
        write_indexed_png(results / "beta" / f"{t:05d}.png", prediction)
    numbers = evaluate_davis(davis, results, workers=1, progress=False)
    assert numbers["per_object"]["beta_1"] == [1.0, 1.0]  # the void band is background in both
    prediction[0:10, 48:58] = 1  # a false positive inside the void band counts
    for t in range(1, FRAMES - 1):
        write_indexed_png(results / "beta" / f"{t:05d}.png", prediction)
    numbers = evaluate_davis(davis, results, workers=1, progress=False)
    assert numbers["per_object"]["beta_1"][0] < 1.0


def test_parallel_and_serial_agree(davis, tmp_path):
    results = perfect_results(davis, tmp_path / "results")
    write_indexed_png(results / "alpha" / "00002.png", beta_labels())
    serial = evaluate_davis(davis, results, workers=1, progress=False)
    assert evaluate_davis(davis, results, workers=2, progress=False) == serial
    assert serial["J&F-Mean"] < 1.0


def test_workers_are_started_only_for_big_sets(davis, tmp_path, monkeypatch):
    import util.metrics as metrics

    started = []

    class Recording(metrics.ProcessPoolExecutor):
        def __init__(self, workers, **kwargs):
            started.append(workers)
            super().__init__(workers, **kwargs)

    monkeypatch.setattr(metrics, "ProcessPoolExecutor", Recording)
    results = perfect_results(davis, tmp_path / "results")
    small = evaluate_davis(davis, results, progress=False)
    assert started == []  # a tiny set: evaluated in this process
    monkeypatch.setattr(metrics, "PARALLEL_MIN_PIXEL_FRAMES", 2 * FRAMES * SHAPE[0] * SHAPE[1])
    monkeypatch.setattr(metrics, "default_workers", lambda: 2)
    assert evaluate_davis(davis, results, progress=False) == small
    assert started == [2]


def test_synthetic_davis_against_its_own_annotations(tmp_path):
    davis = tmp_path / "synthetic"
    write_layout("davis", davis, SyntheticSpec(videos=2, frames=4, size=(48, 64), max_objects=3, progress=False))
    results = perfect_results(davis, tmp_path / "results")
    numbers = evaluate_davis(davis, results, subset="train", workers=1, progress=False)
    assert numbers["J&F-Mean"] == 1.0 and len(numbers["per_object"]) >= 1
    assert (results / "global_results-train.csv").is_file()


def break_missing_sequence(results: Path) -> Path:
    shutil.rmtree(results / "beta")
    return results / "beta"


def break_missing_frame(results: Path) -> Path:
    (results / "beta" / "00002.png").unlink()
    return results / "beta" / "00002.png"


def break_size(results: Path) -> Path:
    write_indexed_png(results / "beta" / "00002.png", np.zeros((41, 60), np.uint8))
    return results / "beta" / "00002.png"


def break_label(results: Path) -> Path:
    write_indexed_png(results / "beta" / "00003.png", alpha_labels())  # label 2, beta has one object
    return results / "beta" / "00003.png"


def break_mode(results: Path) -> Path:
    Image.fromarray(beta_labels()).save(results / "alpha" / "00001.png")  # grayscale, not indexed
    return results / "alpha" / "00001.png"


@pytest.mark.parametrize("breaker, problem", [
    (break_missing_sequence, "missing results folder"),
    (break_missing_frame, "missing result frame"),
    (break_size, "size 60x41 differs"),
    (break_label, "label 2 is higher than the number of objects (1)"),
    (break_mode, "not an indexed"),
])
def test_bad_results(davis, tmp_path, breaker, problem):
    results = perfect_results(davis, tmp_path / "results")
    culprit = breaker(results)
    done = run(davis, results)
    assert done.returncode == 2
    message = done.stderr.splitlines()[-1]  # after the progress bar
    assert message.startswith("error: ") and str(culprit) in message and problem in message
    assert not any((results / name).exists() for name in OUTPUTS)
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        evaluate_davis(davis, results, workers=2, progress=False)


@pytest.mark.parametrize("layout_problem", ["no folder", "no set list", "no annotations"])
def test_bad_davis_path(davis, tmp_path, layout_problem):
    results = perfect_results(davis, tmp_path / "results")
    if layout_problem == "no folder":
        davis, culprit = tmp_path / "nowhere", tmp_path / "nowhere"
    elif layout_problem == "no set list":
        culprit = davis / "ImageSets" / "2017" / "val.txt"
        culprit.unlink()
    else:
        culprit = davis / "Annotations" / "480p" / "beta"
        shutil.rmtree(culprit)
    done = run(davis, results)
    assert done.returncode == 2
    message = done.stderr.splitlines()[-1]
    assert message.startswith("error: ") and str(culprit) in message
    assert not any((results / name).exists() for name in OUTPUTS)


def test_plot_charts_every_object(davis, tmp_path):
    results = perfect_results(davis, tmp_path / "results")
    done = run(davis, results, "--plot")
    assert done.returncode == 0, done.stderr
    chart = results / "per-sequence_results-val.png"
    assert f"chart: {chart}" in done.stdout
    with Image.open(chart) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    for colour in ((31, 119, 180), (255, 127, 14)):  # J bars (tab:blue) and F bars (tab:orange), all at 1.0
        assert (pixels == colour).all(axis=1).sum() > 3 * 0.5 * image.width * 4  # 3 long bars of each
