"""inference/outputs.py: label maps, mask and score folders, the timing summary and the server zip."""
import json
import zipfile

import numpy as np
import torch

from inference.outputs import MaskFolder, ScoreFolder, VideoTiming, labels_of, summarise, write_zip
from inference.sources import FrameInfo, Video
from util.imageio import DAVIS_PALETTE, read_indexed_png


def _prob() -> torch.Tensor:
    prob = torch.zeros(3, 4, 6)  # background and two objects
    prob[0] = 0.6
    prob[1, :2, :3] = 0.9
    prob[2, 2:, 3:] = 0.8
    return prob


def test_labels_carry_the_objects_own_ids():
    labels = labels_of(_prob(), [7, 3])
    assert labels.dtype == np.uint8 and labels[0, 0] == 7 and labels[3, 5] == 3 and labels[0, 5] == 0


def test_mask_folder_writes_only_the_frames_asked_for(tmp_path):
    folder = MaskFolder(tmp_path, DAVIS_PALETTE)
    labels = labels_of(_prob(), [1, 2])
    folder.add(FrameInfo("00000"), None, None, [1, 2], labels)
    folder.add(FrameInfo("00001", required=False), None, None, [1, 2], labels)
    assert [p.name for p in tmp_path.iterdir()] == ["00000.png"]
    written, palette = read_indexed_png(tmp_path / "00000.png")
    assert np.array_equal(written, labels) and palette[:6] == DAVIS_PALETTE[:6]


def test_score_folder_quantises_probabilities_with_their_object_ids(tmp_path):
    video = Video("v", [FrameInfo("00000"), FrameInfo("00001", required=False)])
    folder = ScoreFolder(tmp_path, video, DAVIS_PALETTE)
    folder.add(video.frames[0], None, _prob(), [5, 9], None)
    folder.add(video.frames[1], None, _prob(), [5, 9], None)
    assert json.loads((tmp_path / "meta.json").read_text())["frames"] == ["00000"]
    scores = np.load(tmp_path / "00000.npz")
    assert scores["prob"].dtype == np.uint8 and scores["prob"][1, 0, 0] == round(0.9 * 255)
    assert scores["object_ids"].tolist() == [5, 9] and not (tmp_path / "00001.npz").exists()


def test_timing_summary_is_the_amortised_fps_over_videos(tmp_path):
    summary = summarise([VideoTiming("a", 30, 10.0), VideoTiming("b", 10, 10.0)], tmp_path / "timing.json")
    assert summary["fps"] == 2.0 and summary["frames"] == 40 and summary["per_video"]["b"]["seconds"] == 10.0
    assert json.loads((tmp_path / "timing.json").read_text()) == summary
    assert summarise([])["fps"] == 0.0


def test_zip_holds_every_png_under_its_root_but_not_unfinished_folders(tmp_path):
    masks = tmp_path / "masks"
    for name in ("a/00000.png", "b/00000.png", ".tmp-c/00000.png"):
        (masks / name).parent.mkdir(parents=True, exist_ok=True)
        (masks / name).write_bytes(b"png")
    (masks / "timing.json").write_text("{}")
    write_zip(masks, tmp_path / "out.zip", "Annotations")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert sorted(archive.namelist()) == ["Annotations/a/00000.png", "Annotations/b/00000.png"]
