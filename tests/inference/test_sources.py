"""inference/sources.py: the DAVIS, YouTubeVOS, folder and video-file layouts, and reading planned frames."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from inference.sources import (
    davis_videos,
    folder_videos,
    iterate_frames,
    mask_size_problem,
    video_file,
    youtube_videos,
)
from util.fileio import InputError
from util.imageio import write_indexed_png

SIZE = (32, 48)  # H, W


def _frame(path, value: int, size=SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


def _mask(path, labels: dict[int, tuple[slice, slice]], size=SIZE) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    for label, where in labels.items():
        mask[where] = label
    path.parent.mkdir(parents=True, exist_ok=True)
    write_indexed_png(path, mask)
    return mask


def _davis(root, names=("a", "b"), frames=4):
    for name in names:
        for t in range(frames):
            _frame(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", 10 * t)
        _mask(root / "Annotations" / "480p" / name / "00000.png", {1: (slice(0, 8), slice(0, 8)),
                                                                     2: (slice(10, 20), slice(10, 20))})
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(names) + "\n")
    return root


def test_davis_videos_take_the_set_list_and_only_the_first_mask(tmp_path):
    videos = davis_videos(_davis(tmp_path), "val")
    assert [v.name for v in videos] == ["a", "b"]
    first = videos[0]
    assert [f.name for f in first.frames] == ["00000", "00001", "00002", "00003"]
    assert first.annotated() == [True, False, False, False] and not first.merge_labels
    assert all(f.required for f in first.frames)


def test_davis_2016_merges_the_objects_into_one(tmp_path):
    root = _davis(tmp_path)
    (root / "ImageSets" / "2016").mkdir()
    (root / "ImageSets" / "2016" / "val.txt").write_text("a\n")
    video = davis_videos(root, "val", year=2016)[0]
    _, image, mask = next(iterate_frames(video, [True] * 4))
    assert video.merge_labels and set(np.unique(mask)) == {0, 1}


def test_davis_without_a_first_mask_names_the_file(tmp_path):
    root = _davis(tmp_path)
    (root / "Annotations" / "480p" / "b" / "00000.png").unlink()
    with pytest.raises(InputError, match=r"b/00000\.png: first-frame mask not found"):
        davis_videos(root, "val")


def _youtube(root):
    frames = root / "all_frames" / "valid_all_frames" / "JPEGImages" / "v"
    for t in range(0, 15):
        _frame(frames / f"{t:05d}.jpg", t)
    _mask(root / "valid" / "Annotations" / "v" / "00000.png", {1: (slice(0, 8), slice(0, 8))})
    _mask(root / "valid" / "Annotations" / "v" / "00005.png", {2: (slice(10, 20), slice(10, 20))})
    meta = {"videos": {"v": {"objects": {"1": {"frames": ["00000", "00005", "00010"]},
                                         "2": {"frames": ["00005", "00010"]}}}}}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    return root


def test_youtube_videos_read_every_frame_and_output_those_asked_for(tmp_path):
    video = youtube_videos(_youtube(tmp_path), "valid")[0]
    assert len(video.frames) == 15
    assert [f.name for f in video.frames if f.required] == ["00000", "00005", "00010"]
    assert [i for i, annotated in enumerate(video.annotated()) if annotated] == [0, 5]
    assert all(f.required for f in youtube_videos(tmp_path, "valid", output_all=True)[0].frames)


def test_youtube_annotation_without_its_frame_is_named(tmp_path):
    root = _youtube(tmp_path)
    _mask(root / "valid" / "Annotations" / "v" / "00099.png", {3: (slice(0, 4), slice(0, 4))})
    with pytest.raises(InputError, match=r"00099\.png: annotation without a frame"):
        youtube_videos(root, "valid")


def test_youtube_meta_that_is_not_json_is_named(tmp_path):
    root = _youtube(tmp_path)
    (root / "valid" / "meta.json").write_text("{ not json")
    with pytest.raises(InputError, match="meta.json: not a YouTubeVOS meta.json"):
        youtube_videos(root, "valid")


def test_folder_videos_take_both_layouts_and_every_mask(tmp_path):
    davis = folder_videos(_davis(tmp_path / "d"))
    assert [v.name for v in davis] == ["a", "b"] and davis[0].annotated()[0]
    youtube = tmp_path / "y"
    for t in range(3):
        _frame(youtube / "JPEGImages" / "clip" / f"{t:05d}.jpg", t)
    _mask(youtube / "Annotations" / "clip" / "00000.png", {1: (slice(0, 8), slice(0, 8))})
    _mask(youtube / "Annotations" / "clip" / "00002.png", {2: (slice(0, 8), slice(10, 18))})
    video = folder_videos(youtube)[0]
    assert video.annotated() == [True, False, True] and all(f.required for f in video.frames)
    (youtube / "Annotations" / "clip" / "00000.png").unlink()
    (youtube / "Annotations" / "clip" / "00002.png").unlink()
    with pytest.raises(InputError, match="no annotation for video clip"):
        folder_videos(youtube)


def test_planned_frames_only_are_read_with_their_masks(tmp_path):
    video = davis_videos(_davis(tmp_path), "val")[0]
    read = list(iterate_frames(video, [True, False, True, False]))
    assert [index for index, _, _ in read] == [0, 2]
    assert read[0][2] is not None and read[1][2] is None
    assert read[1][1].shape == (*SIZE, 3) and read[1][1][0, 0, 0] == 20  # frame 2's pixels (JPEG: 20 +- 1)


def test_a_mask_of_another_size_than_its_frame_is_named(tmp_path):
    root = _davis(tmp_path)
    _mask(root / "Annotations" / "480p" / "a" / "00000.png", {1: (slice(0, 4), slice(0, 4))}, size=(16, 16))
    video = davis_videos(root, "val")[0]
    with pytest.raises(InputError, match=r"00000\.png: mask is 16x16 but its frame is 48x32"):
        list(iterate_frames(video, [True] * 4))
    assert mask_size_problem(np.zeros(SIZE), np.zeros((*SIZE, 3))) is None


def test_a_frame_of_another_size_than_the_first_is_named(tmp_path):
    root = _davis(tmp_path)
    _frame(root / "JPEGImages" / "480p" / "a" / "00002.jpg", 20, size=(40, 48))
    video = davis_videos(root, "val")[0]
    with pytest.raises(InputError, match=r"a/00002\.jpg: frame is 48x40 but the video's first frame \(00000\.jpg\) "
                                         r"is 48x32"):
        list(iterate_frames(video, [True] * 4))


def _mp4(path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (SIZE[1], SIZE[0]))
    for t in range(frames):
        writer.write(np.full((*SIZE, 3), 20 * t, np.uint8))
    writer.release()


def test_a_video_file_is_decoded_frame_by_frame_with_its_first_mask(tmp_path):
    _mp4(tmp_path / "clip.mp4", 5)
    mask = _mask(tmp_path / "first.png", {1: (slice(0, 8), slice(0, 8))})
    video = video_file(tmp_path / "clip.mp4", tmp_path / "first.png")
    assert len(video.frames) == 5 and video.annotated() == [True, False, False, False, False]
    read = list(iterate_frames(video, [True, False, True, True, False]))
    assert [index for index, _, _ in read] == [0, 2, 3]
    assert np.array_equal(read[0][2], mask) and read[0][1].shape == (*SIZE, 3)
    with pytest.raises(InputError, match="cannot read the video"):
        video_file(tmp_path / "missing.mp4", tmp_path / "first.png")
    with pytest.raises(InputError, match="first-frame mask not found"):
        video_file(tmp_path / "clip.mp4", tmp_path / "none.png")
