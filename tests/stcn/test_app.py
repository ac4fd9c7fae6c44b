"""The browser tool's pieces that need no browser: painting into labels, the weights offered, the source."""
import json

import numpy as np
import pytest

from stcn.app import _source, brush_colours, default_weights, labels_from_strokes
from util.fileio import InputError
from util.imageio import DAVIS_PALETTE


def test_strokes_paint_labels_by_their_colour_and_black_paints_objects_away():
    current = np.array([[0, 1, 1], [0, 2, 2]], dtype=np.uint8)
    strokes = np.zeros((2, 3, 4), np.uint8)
    strokes[0, 0] = [*DAVIS_PALETTE[9:12], 255]  # object 3's colour
    strokes[0, 1] = [0, 0, 0, 255]  # background: erases object 1 here
    strokes[1, 2] = [*[c + 10 for c in DAVIS_PALETTE[6:9]], 200]  # near object 2's colour (anti-aliased edge)
    strokes[1, 0] = [*DAVIS_PALETTE[3:6], 60]  # nearly transparent: not painted
    assert labels_from_strokes(strokes, current).tolist() == [[3, 0, 1], [0, 2, 2]]
    assert brush_colours()[:2] == ["rgb(0, 0, 0)", "rgb(128, 0, 0)"]
    with pytest.raises(InputError, match="painting is 3x2 but the frame is 2x2"):
        labels_from_strokes(strokes, current[:, :2])


def test_the_weights_offered_are_the_demos_network_else_the_released_ones(tmp_path):
    assert default_weights(tmp_path) is None
    (tmp_path / "saves").mkdir()
    (tmp_path / "saves" / "stcn.pth").write_bytes(b"w")
    assert default_weights(tmp_path) == tmp_path / "saves" / "stcn.pth"
    (tmp_path / "demo_output" / "train" / "run").mkdir(parents=True)
    (tmp_path / "demo_output" / "train" / "run" / "run_250.pth").write_bytes(b"w")
    (tmp_path / "demo_output" / "demo_summary.json").write_text(json.dumps({"weights": "train/run/run_250.pth"}))
    assert default_weights(tmp_path) == tmp_path / "demo_output" / "train" / "run" / "run_250.pth"


def test_the_source_is_an_upload_or_a_server_path(tmp_path):
    frames = [tmp_path / f"{i:05d}.jpg" for i in range(2)]
    for frame in frames:
        frame.write_bytes(b"jpeg")
    assert _source([str(tmp_path / "clip.mp4")], "", tmp_path / "up") == tmp_path / "clip.mp4"
    assert _source([str(f) for f in frames], "", tmp_path / "up") == tmp_path / "up"
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["00000.jpg", "00001.jpg"]
    assert _source(None, f" {tmp_path} ", tmp_path / "up2") == tmp_path
    with pytest.raises(InputError, match="not both"):
        _source([str(frames[0])], str(tmp_path), tmp_path / "up3")
    with pytest.raises(InputError, match="upload a video file"):
        _source([], "", tmp_path / "up4")
