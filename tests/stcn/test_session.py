"""The annotation session behind the browser tool, without a browser: propagate, correct a frame, propagate
again (the core's masks with the same memory frames), stop and continue, export, bad input."""
import zipfile

import cv2
import numpy as np
import pytest
import torch

import stcn
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from inference.core import InferenceCore, MemorySchedule
from inference.outputs import labels_of
from stcn.session import AnnotationSession, FrameStore
from util.fileio import InputError
from util.imageio import list_images, read_image, read_indexed_png, read_mask
from util.preprocess import normalise


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """One synthetic video of 12 frames (64 x 96) with its masks."""
    root = tmp_path_factory.mktemp("session_video")
    write_layout("davis", root, SyntheticSpec(videos=1, frames=12, size=(64, 96), max_objects=2, seed=9,
                                              progress=False))
    name = next((root / "JPEGImages" / "480p").iterdir()).name
    return root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name


@pytest.fixture(scope="module")
def segmenter(weights):
    return stcn.load(weights, device="cpu")


def _session(segmenter, frames_folder, tmp_path):
    return AnnotationSession(segmenter, FrameStore(frames_folder, tmp_path / "cache"), tmp_path / "session")


def _truth(annotations, index):
    return read_mask(sorted(annotations.iterdir())[index])


def _core_labels(network, images, masks):
    """The inference core stepped by hand over `images` in order, `masks` {position: whole mask}."""
    core = InferenceCore(network, MemorySchedule())
    labels = []
    for position, image in enumerate(images):
        mask = masks.get(position)
        prob = core.step(normalise(image), None if mask is None else torch.from_numpy(mask), whole_mask=True)
        labels.append(labels_of(prob, core.object_ids))
    return labels


def test_propagation_corrections_and_a_second_propagation_give_the_cores_masks(segmenter, video, tmp_path):
    frames_folder, annotations = video
    images = [read_image(p) for p in list_images(frames_folder)]
    session = _session(segmenter, frames_folder, tmp_path)
    first = _truth(annotations, 0)
    session.mark(0, first)
    session.start(0)
    assert list(session.steps()) == list(range(1, 12)) and not session.propagating
    expected = list(segmenter.segment(frames_folder, {0: first}))  # what eval_generic.py gives
    assert all(np.array_equal(session.mask(i), expected[i]) for i in range(12))

    k = 7
    correction = _truth(annotations, k)
    session.mark(k, correction)
    session.start(k)
    # forward over frames 0 (marked), 7 and on; then backward over 0 (marked), 7 and down to 1
    assert list(session.steps()) == list(range(8, 12)) + list(range(6, 0, -1))
    forward = _core_labels(segmenter.network, [images[0]] + images[k:], {0: first, 1: correction})
    assert all(np.array_equal(session.mask(i), forward[i - k + 1]) for i in range(k + 1, 12))
    backward = _core_labels(segmenter.network, [images[0]] + images[k:0:-1], {0: first, 1: correction})
    assert all(np.array_equal(session.mask(i), backward[k - i + 1]) for i in range(1, k))
    assert np.array_equal(session.mask(k), correction) and np.array_equal(session.mask(0), first)


def test_a_stopped_propagation_continues_to_the_same_masks(segmenter, video, tmp_path):
    frames_folder, annotations = video
    straight = _session(segmenter, frames_folder, tmp_path / "a")
    straight.mark(0, _truth(annotations, 0))
    straight.start(0)
    list(straight.steps())

    paused = _session(segmenter, frames_folder, tmp_path / "b")
    paused.mark(0, _truth(annotations, 0))
    paused.start(0)
    running = paused.steps()
    assert [next(running) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(InputError, match="running already"):
        next(paused.steps())  # a second caller (a double click) while it runs
    with pytest.raises(InputError, match="stop it first"):
        paused.start(0)
    paused.stop()
    assert list(running) == [] and paused.propagating  # paused after frame 3
    paused.stop()  # while paused: nothing to stop, and Continue still goes on
    assert list(paused.steps()) == list(range(4, 12)) and not paused.propagating
    assert all(np.array_equal(paused.mask(i), straight.mask(i)) for i in range(12))


def test_export_writes_every_frames_mask_and_an_overlay_video(segmenter, video, tmp_path):
    frames_folder, annotations = video
    session = _session(segmenter, frames_folder, tmp_path)
    session.mark(2, _truth(annotations, 2))
    session.start(2)
    list(session.steps())
    archive = session.export_zip(tmp_path / "masks.zip")
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        assert names == [f"{frames_folder.name}/{i:05d}.png" for i in range(12)]
        opened.extractall(tmp_path / "unzipped")
    for i in range(12):
        labels, palette = read_indexed_png(tmp_path / "unzipped" / frames_folder.name / f"{i:05d}.png")
        assert np.array_equal(labels, session.mask(i)) and palette[3:6] == [128, 0, 0]  # the DAVIS palette
    assert session.mask(0).any() and session.mask(1).any()  # backward to the video's start
    overlay = session.export_overlay(tmp_path / "overlay.mp4")
    capture = cv2.VideoCapture(str(overlay))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


def test_a_video_file_is_read_as_its_frames(segmenter, video, tmp_path):
    frames_folder, annotations = video
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for image in list_images(frames_folder):
        writer.write(cv2.cvtColor(read_image(image), cv2.COLOR_RGB2BGR))
    writer.release()
    store = FrameStore(path, tmp_path / "cache")
    assert len(store) == 12 and store.name == "clip" and store.fps == 10
    session = AnnotationSession(segmenter, store, tmp_path / "session")
    session.mark(0, _truth(annotations, 0))
    session.start(0)
    list(session.steps())
    expected = list(segmenter.segment(path, {0: _truth(annotations, 0)}))  # the video read as eval_generic reads it
    assert all(np.array_equal(session.mask(i), expected[i]) for i in range(12))


def test_bad_input_is_named(segmenter, video, tmp_path):
    frames_folder, _ = video
    session = _session(segmenter, frames_folder, tmp_path)
    with pytest.raises(InputError, match="mask is 10x8 but its frame is 96x64"):
        session.mark(0, np.zeros((8, 10), np.uint8))
    with pytest.raises(InputError, match="frame 3 has no mask"):
        session.start(3)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="broken.mp4: cannot read the video"):
        FrameStore(tmp_path / "broken.mp4", tmp_path / "cache2")
    with pytest.raises(InputError, match="no such video file or frame folder"):
        FrameStore(tmp_path / "missing", tmp_path / "cache3")
