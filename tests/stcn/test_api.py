"""The Python API: the README's snippet as written, the same masks as eval_davis.py, every kind of
input, late objects, streaming, and clear errors."""
import itertools
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import stcn
from dataset.synthetic import generate_video, sample_rng
from eval_helpers import ROOT, run_script
from inference.sources import video_frames
from model.checkpoint import prepare_for_inference
from util.fileio import InputError
from util.imageio import write_indexed_png


@pytest.fixture(scope="module")
def net(deterministic_stcn):
    return stcn.Segmenter(prepare_for_inference(deterministic_stcn, torch.device("cpu")), torch.device("cpu"))


@pytest.fixture(scope="module")
def clip(reference_dir):
    return dict(np.load(reference_dir / "inference_2obj.npz"))


def readme_snippet() -> str:
    """The Python block under the README's "In Python" heading."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^#+ In Python\n.*?```python\n(.*?)```", text, re.S | re.M)
    assert found, "README.md has no ```python block under an 'In Python' heading"
    return found.group(1)


def test_the_readme_snippet_runs_as_written_and_gives_eval_davis_masks(tmp_path, weights):
    """The snippet on a video file, then eval_davis.py on the same decoded frames: the same masks."""
    video = generate_video(sample_rng(31, 0), 12, (80, 128), max_objects=3, min_objects=2)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (128, 80))
    for frame in video.frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    write_indexed_png(tmp_path / "first.png", video.labels[0])
    (tmp_path / "saves").mkdir()
    (tmp_path / "saves" / "stcn.pth").symlink_to(weights)
    (tmp_path / "snippet.py").write_text(readme_snippet())
    done = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    api = [np.array(Image.open(tmp_path / f"out_{i:05d}.png")) for i in range(len(video.frames))]
    assert not (tmp_path / f"out_{len(video.frames):05d}.png").exists()

    davis = tmp_path / "davis"  # the frames as decoded from the video, losslessly, in the DAVIS layout
    for index, frame in enumerate(video_frames(tmp_path / "clip.mp4")):
        path = davis / "JPEGImages" / "480p" / "clip" / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(path)
    (davis / "Annotations" / "480p" / "clip").mkdir(parents=True)
    (davis / "Annotations" / "480p" / "clip" / "00000.png").write_bytes((tmp_path / "first.png").read_bytes())
    (davis / "ImageSets" / "2017").mkdir(parents=True)
    (davis / "ImageSets" / "2017" / "val.txt").write_text("clip\n")
    run_script("eval_davis.py", "--model", weights, "--davis_path", davis, "--output", tmp_path / "out")
    script = [np.array(Image.open(tmp_path / "out" / "clip" / f"{i:05d}.png")) for i in range(len(video.frames))]
    assert len(set(np.unique(np.stack(api)).tolist())) >= 2  # objects were segmented, not just background
    for index, (ours, theirs) in enumerate(zip(api, script, strict=True)):
        np.testing.assert_array_equal(ours, theirs, err_msg=f"frame {index}")


def test_load_prepares_the_network_for_inference(weights):
    net = stcn.load(weights)  # device None: the CPU here
    assert net.device == torch.device("cpu")
    assert stcn.load(weights, torch.device("cpu")).device == stcn.load(weights, "cpu").device == net.device
    assert not net.network.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.network.modules())  # folded


def test_reference_clip_from_arrays_pil_images_and_a_folder(net, clip, tmp_path):
    """Parity through the API (whole-frame decoding), and the same labels from every kind of input."""
    frames, first = list(clip["frames"]), clip["first_mask"]
    arrays = list(net.segment(frames, {0: first}))
    assert (np.stack(arrays) == clip["expected_labels"]).mean() >= 0.999
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{index:05d}.png")
    write_indexed_png(tmp_path.parent / "first.png", first)
    sources = {
        "PIL images": ([Image.fromarray(f) for f in frames], {0: Image.fromarray(first)}),
        "a folder and a PNG path": (tmp_path, {0: tmp_path.parent / "first.png"}),
        "a generator": ((f for f in frames), {0: first.astype(np.int64)}),
    }
    for name, (source, masks) in sources.items():
        labels = list(net.segment(source, masks))
        assert all((a == b).all() for a, b in zip(arrays, labels, strict=True)), name


def test_objects_may_first_appear_later_and_frames_before_any_mask_are_background(net, clip):
    frames, first = list(clip["frames"]), clip["first_mask"]
    one, two = np.where(first == 1, 5, 0).astype(np.uint8), np.where(first == 2, 9, 0).astype(np.uint8)
    labels = list(net.segment(frames, {2: one, 4: two}))
    assert [lab.any() for lab in labels[:2]] == [False, False]
    assert set(np.unique(labels[2])) <= {0, 5} and 5 in labels[2] and 9 not in labels[3]
    assert (labels[4][two == 9] == 9).all()  # the given mask owns its pixels
    assert {5, 9} <= set(np.unique(np.stack(labels[5:])).tolist())


def test_segment_streams_an_endless_source(net, clip):
    endless = itertools.cycle(clip["frames"])
    labels = list(itertools.islice(net.segment(endless, {0: clip["first_mask"]}), 13))
    assert len(labels) == 13 and labels[12].shape == clip["first_mask"].shape


def test_settings_keep_the_evaluation_defaults_and_change_the_result(net, clip):
    frames, masks = list(clip["frames"]), {0: clip["first_mask"]}
    default = np.stack(list(net.segment(frames, masks)))
    same = np.stack(list(net.segment(frames, masks, top_k=20, mem_every=5)))
    np.testing.assert_array_equal(default, same)
    full_softmax = np.stack(list(net.segment(frames, masks, top_k=0, mem_every=1)))
    assert (full_softmax != default).any()
    resized = list(net.segment(frames, masks, size=64, flip=True))
    assert all(lab.shape == clip["first_mask"].shape for lab in resized)  # labels at the input's size


def test_frames_from_a_reused_buffer_or_a_reversed_view_are_read_as_given(net, clip):
    """Frames are read ahead, so each is copied: a source that refills one buffer, or hands out BGR->RGB views
    with negative strides, gives the labels of the frames themselves."""
    frames, masks = list(clip["frames"]), {0: clip["first_mask"]}
    expected = np.stack(list(net.segment(frames, masks)))

    def refilled():
        buffer = np.empty_like(frames[0])
        for frame in frames:
            buffer[...] = frame
            yield buffer

    np.testing.assert_array_equal(np.stack(list(net.segment(refilled(), masks))), expected)
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
    np.testing.assert_array_equal(np.stack(list(net.segment((f[..., ::-1] for f in bgr), masks))), expected)


def test_a_later_mask_brings_in_only_the_objects_not_given_before(net, clip):
    frames, first = list(clip["frames"]), clip["first_mask"]
    once = np.stack(list(net.segment(frames, {0: first})))
    np.testing.assert_array_equal(np.stack(list(net.segment(frames, {0: first, 3: first}))), once)
    late = np.where(first == 2, 7, first).astype(np.uint8)  # object 1 again, and a new object 7
    labels = np.stack(list(net.segment(frames, {0: np.where(first == 1, 1, 0).astype(np.uint8), 3: late})))
    assert (labels[3][late == 7] == 7).all() and 7 not in labels[:3]


@pytest.mark.parametrize("frames, masks, settings, message", [
    ("frames", {}, {}, "at least one frame"),
    ("frames", {"0": "mask"}, {}, "frame indices must be integers from 0, got '0'"),
    ("frames", {-1: "mask"}, {}, "frame indices must be integers from 0, got -1"),
    ("frames", {0: "mask"}, {"top_k": -1}, "top_k=-1: must be at least 0"),
    ("frames", {0: "mask"}, {"size": 8}, "size=8: must be 0"),
])
def test_bad_arguments_are_refused_at_the_call(net, clip, frames, masks, settings, message):
    given = {"mask": clip["first_mask"]}
    masks = {index: given[mask] for index, mask in masks.items()}
    with pytest.raises(ValueError, match=message):
        net.segment(list(clip["frames"]), masks, **settings)  # no frame read yet


@pytest.mark.parametrize("frames, masks, message", [
    ("frames", {0: np.zeros((10, 10), np.uint8)}, "mask of frame 0: mask is 10x10 but its frame is 160x96"),
    ("frames", {0: "mask", 40: "mask"}, r"masks given for frames \[40\], but the video has 10 frames"),
    ("floats", {0: "mask"}, "frame 0: expected an H x W x 3 uint8 array"),
    ("resized", {0: "mask"}, "frame 1 is 80x48 but frame 0 is 160x96"),
    ("frames", {0: "float mask"}, "mask of frame 0: expected an H x W array of integer labels"),
    ("frames", {0: "rgb mask"}, "a RGB image is not a label map"),
])
def test_bad_frames_and_masks_are_a_clear_error(net, clip, frames, masks, message):
    frames = {"frames": list(clip["frames"]), "floats": [clip["frames"][0] / 255.0],
              "resized": [clip["frames"][0], clip["frames"][1][::2, ::2]]}[frames]
    given = {"mask": clip["first_mask"], "float mask": clip["first_mask"] / 2.0,
             "rgb mask": Image.fromarray(clip["frames"][0])}
    masks = {index: given.get(mask, mask) if isinstance(mask, str) else mask for index, mask in masks.items()}
    with pytest.raises(ValueError, match=message):
        list(net.segment(frames, masks))


def test_a_missing_or_unreadable_video_names_the_file(net, clip, tmp_path):
    with pytest.raises(InputError, match="no such video file or frame folder"):
        net.segment(tmp_path / "missing.mp4", {0: clip["first_mask"]})
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="broken.mp4: cannot read the video"):
        net.segment(tmp_path / "broken.mp4", {0: clip["first_mask"]})
