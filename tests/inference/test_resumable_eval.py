"""An evaluation killed mid-set and run again ends with the files of an uninterrupted run; finished videos
are skipped (by one process or split among torchrun's), and a record only counts for the same settings."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest
from eval_helpers import ROOT, run_script

from inference.config import EvalConfig, RunOptions
from inference.core import MemorySchedule
from inference.outputs import CompletedVideos, VideoTiming
from inference.sources import FrameInfo, Video


def _eval_command(weights, root, out, *extra):
    return [sys.executable, str(ROOT / "eval_davis.py"), "--model", str(weights), "--davis_path", str(root),
            "--output", str(out), "--zip", "--evaluate", *extra]


def _files(out):
    """Every file under `out` (relative path -> bytes) but the timings, which differ from run to run."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("timing.json", "submission.zip") and ".complete" not in p.parts}


def _zip_contents(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _jf(out):
    return json.loads((out / "results.json").read_text())["J&F-Mean"]


@pytest.fixture(scope="module")
def uninterrupted(davis_four_videos, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    subprocess.run(_eval_command(weights, davis_four_videos, out), cwd=ROOT, check=True, capture_output=True)
    return out


def test_a_killed_evaluation_rerun_ends_with_the_files_of_an_uninterrupted_one(davis_four_videos, weights, uninterrupted,
                                                                              tmp_path):
    out = tmp_path / "out"
    killed = subprocess.Popen(_eval_command(weights, davis_four_videos, out), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    while not list((out / ".complete").glob("*.json")):
        assert killed.poll() is None, killed.communicate()
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGSTOP)  # hold it where it is: the kill must land mid-set
    finished = len(list((out / ".complete").glob("*.json")))
    killed.kill()
    killed.communicate()
    assert 1 <= finished < 4
    assert not (out / "submission.zip").exists() and not (out / "results.json").exists()

    rerun = run_script("eval_davis.py", *_eval_command(weights, davis_four_videos, out)[2:])
    assert f"{finished} of 4 videos finished by an earlier run with these settings: skipped" in rerun.stdout
    assert _files(out) == _files(uninterrupted)  # byte-identical masks, results and nothing half-written
    assert _zip_contents(out / "submission.zip") == _zip_contents(uninterrupted / "submission.zip")
    assert _jf(out) == _jf(uninterrupted)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["videos"] == 4 and timing["frames"] == 40  # of the whole set, the skipped videos included

    forced = run_script("eval_davis.py", *_eval_command(weights, davis_four_videos, out, "--rerun")[2:])
    assert "skipped" not in forced.stdout and _files(out) == _files(uninterrupted)


def test_torchrun_ranks_split_only_the_videos_left(davis_four_videos, weights, uninterrupted, tmp_path):
    out = tmp_path / "ddp"
    shutil.copytree(uninterrupted, out)
    names = sorted(p.stem for p in (out / ".complete").glob("*.json"))
    for name in names[1:]:  # one video finished; the others cut off (their folder gone or partly written)
        (out / ".complete" / f"{name}.json").unlink()
    shutil.rmtree(out / names[1])
    (out / names[2] / "00009.png").unlink()
    (out / f".{names[3]}.99999999-0123abcd.tmp").mkdir()  # a folder a killed process was writing
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29731",
               *_eval_command(weights, davis_four_videos, out, "--device", "cpu")[1:]]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "1 of 4 videos finished by an earlier run" in result.stdout
    assert "removed 1 file(s) or folder(s) a killed run was writing" in result.stdout
    # 3 videos left: rank 0 takes two, rank 1 one
    assert "videos (rank 0): 100%|██████████| 2/2" in result.stderr and "videos (rank 1): 100%|██████████| 1/1" in result.stderr
    assert _files(out) == _files(uninterrupted)
    assert json.loads((out / "timing.json").read_text())["videos"] == 4


def _video(tmp_path, name="v"):
    frames = [FrameInfo(f"{i:05d}", tmp_path / f"{i:05d}.jpg", tmp_path / "00000.png" if i == 0 else None)
              for i in range(3)]
    return Video(name, frames)


def test_a_record_counts_only_for_the_same_settings_and_source(tmp_path):
    settings = {"model": "a.pth", "top_k": 20}
    video = _video(tmp_path)
    CompletedVideos(tmp_path, settings).mark(video, VideoTiming("v", 3, 1.5))
    assert CompletedVideos(tmp_path, settings).timing(video) == VideoTiming("v", 3, 1.5)
    assert CompletedVideos(tmp_path, {**settings, "top_k": 10}).timing(video) is None  # other settings
    assert CompletedVideos(tmp_path, settings, reuse=False).timing(video) is None  # --rerun
    moved = _video(tmp_path / "elsewhere")
    assert CompletedVideos(tmp_path, settings).timing(moved) is None  # other frames under the same name
    assert CompletedVideos(tmp_path, settings, [tmp_path / "masks"]).timing(video) is None  # its folder is gone
    (tmp_path / "masks" / "v").mkdir(parents=True)
    assert CompletedVideos(tmp_path, settings, [tmp_path / "masks"]).timing(video) == VideoTiming("v", 3, 1.5)
    (tmp_path / ".complete" / "v.json").write_text("{")  # cut off: cannot be, as it is renamed into place
    assert CompletedVideos(tmp_path, settings).timing(video) is None


def test_the_settings_name_the_weights_file_and_what_changes_outputs(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"0")
    config = EvalConfig(weights, tmp_path, MemorySchedule(), RunOptions())
    settings = config.settings()
    assert settings["model"] == str(weights.resolve()) and settings["schedule"]["top_k"] == 20
    assert "device" not in settings and "rerun" not in settings
    assert EvalConfig(weights, tmp_path, MemorySchedule(top_k=10), RunOptions()).settings() != settings
    weights.write_bytes(b"01")  # the same path, other weights
    assert config.settings() != settings
