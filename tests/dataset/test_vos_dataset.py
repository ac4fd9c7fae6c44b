"""VOSDataset on generated DAVIS / YouTubeVOS / BL30K roots, frame and object pickers, and the root checks."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset.checks import check_roots
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from dataset.vos_dataset import (
    VideoFolders,
    VOSDataset,
    bl30k_train,
    davis_train,
    main_training_set,
    pick_frames,
    pick_objects,
    repeat_concat,
    youtube_train,
)
from util.fileio import InputError
from util.imageio import write_indexed_png

CROP = 64
SIZE = (64, 96)


def spec(videos: int, frames: int) -> SyntheticSpec:
    return SyntheticSpec(videos=videos, frames=frames, size=SIZE, max_objects=3, seed=0, progress=False)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """DAVIS (3 videos: 2 train), YouTubeVOS train_480p (3 videos of 4 stored frames), BL30K (2 videos)."""
    base = tmp_path_factory.mktemp("data")
    write_layout("davis", base / "DAVIS" / "2017" / "trainval", spec(3, 10))
    write_layout("youtube", base / "YouTube", spec(3, 20))
    (base / "YouTube" / "train").rename(base / "YouTube" / "train_480p")
    write_layout("bl30k", base / "BL30K", spec(2, 8))
    write_layout("static", base / "static", spec(1, 1))
    return {"davis": base / "DAVIS", "yv": base / "YouTube", "bl": base / "BL30K", "static": base / "static"}


def check_sample(sample: dict) -> None:
    """The trainer's sample format, with targets present in the first frame and distinct."""
    assert sample["rgb"].shape == (3, 3, CROP, CROP) and sample["rgb"].dtype == torch.float32
    assert sample["rgb"].abs().max() < 2.7
    for key in ("gt", "sec_gt"):
        assert sample[key].shape == (3, 1, CROP, CROP) and sample[key].dtype == torch.float32
        assert set(sample[key].unique().tolist()) <= {0.0, 1.0}
    assert sample["gt"][0].sum() > 0
    assert (sample["gt"] * sample["sec_gt"]).sum() == 0
    assert sample["selector"].dtype == torch.float32
    if sample["selector"].tolist() == [1.0, 1.0]:
        assert sample["sec_gt"][0].sum() > 0
    else:
        assert sample["selector"].tolist() == [1.0, 0.0] and sample["sec_gt"].sum() == 0


# ---------------------------------------------------------------- pickers


def test_pick_frames_is_ordered_within_max_jump_and_reversed_half_the_time():
    torch.manual_seed(0)
    orders, gaps = [], set()
    for _ in range(400):
        indices = pick_frames(num_frames=30, max_jump=4)
        assert all(0 <= i < 30 for i in indices)
        forward = indices if indices[0] < indices[-1] else indices[::-1]
        steps = np.diff(forward)
        assert ((1 <= steps) & (steps <= 4)).all()
        gaps.update(steps.tolist())
        orders.append(indices[0] < indices[-1])
    assert gaps == {1, 2, 3, 4}
    assert 150 < sum(orders) < 250
    assert all(sorted(pick_frames(3, 10)) == [0, 1, 2] for _ in range(20))
    with pytest.raises(ValueError):
        pick_frames(2, 5)


def test_pick_frames_takes_any_count_and_draws_the_papers_three_as_before():
    torch.manual_seed(1)
    for count in (2, 4, 6):
        for _ in range(100):
            indices = pick_frames(num_frames=12, max_jump=3, count=count)
            forward = indices if indices[0] < indices[-1] else indices[::-1]
            assert len(indices) == count and forward[0] >= 0 and forward[-1] < 12
            assert ((1 <= np.diff(forward)) & (np.diff(forward) <= 3)).all()
    assert sorted(pick_frames(5, 10, count=5)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="cannot pick 5 frames out of 4"):
        pick_frames(4, 10, count=5)

    def three_as_before(num_frames: int, max_jump: int) -> list[int]:  # the draw before the count existed
        first = int(torch.randint(1, min(max_jump, num_frames - 2) + 1, ()))
        second = int(torch.randint(1, min(max_jump, num_frames - 1 - first) + 1, ()))
        start = int(torch.randint(0, num_frames - first - second, ()))
        indices = [start, start + first, start + first + second]
        return indices[::-1] if torch.rand(1).item() < 0.5 else indices

    for seed in range(50):  # so that runs from before the lever repeat exactly
        torch.manual_seed(seed)
        drawn = pick_frames(20, 7)
        torch.manual_seed(seed)
        assert drawn == three_as_before(20, 7)


def test_pick_objects_takes_two_distinct_objects_of_the_first_frame():
    torch.manual_seed(0)
    labels = np.zeros((20, 20), np.uint8)
    labels[0:10, 0:10], labels[10:20, 10:20], labels[0:3, 15:18] = 2, 5, 7  # 100, 100 and 9 pixels
    seen = set()
    for _ in range(50):
        chosen = pick_objects(labels)
        assert len(chosen) == 2 and len(set(chosen)) == 2 and set(chosen) <= {2, 5, 7}
        seen.add(tuple(chosen))
    assert len(seen) == 6  # every ordered pair: the first target is not always the lowest label
    assert set(pick_objects(labels, min_pixels=100)) == {2, 5}
    assert pick_objects(labels, min_pixels=101) == []
    assert pick_objects(np.where(labels == 2, 2, 0)) == [2]
    assert all(len(pick_objects(labels, max_targets=1)) == 1 for _ in range(10))


# ---------------------------------------------------------------- datasets


def test_davis_samples(roots):
    torch.manual_seed(0)
    dataset = davis_train(roots["davis"], crop_size=CROP)
    assert dataset.videos == ["synth-0000", "synth-0001"] and dataset.stride == 1 and dataset.max_jump == 5
    selectors = []
    for index in range(len(dataset)):
        for _ in range(3):
            sample = dataset[index]
            check_sample(sample)
            assert sample["info"]["name"] == dataset.videos[index]
            numbers = [int(name[:-4]) for name in sample["info"]["frames"]]
            assert numbers in (sorted(numbers), sorted(numbers)[::-1])
            assert max(np.abs(np.diff(numbers))) <= 5
            selectors.append(sample["selector"][1].item())
    assert 1.0 in selectors  # the generated videos have two or three objects


def test_youtube_samples_use_stored_frames(roots):
    torch.manual_seed(0)
    dataset = youtube_train(roots["yv"], crop_size=CROP)
    assert len(dataset) == 3 and dataset.stride == 5 and dataset.max_jump == 1
    sample = dataset[0]
    check_sample(sample)
    assert sorted(sample["info"]["frames"]) == ["00005.jpg", "00010.jpg", "00015.jpg"] or \
        sorted(sample["info"]["frames"]) == ["00000.jpg", "00005.jpg", "00010.jpg"]


def test_same_seed_same_sample(roots):
    dataset = davis_train(roots["davis"], crop_size=CROP)
    torch.manual_seed(3)
    first = dataset[1]
    torch.manual_seed(3)
    again = dataset[1]
    assert first["info"] == again["info"]
    assert torch.equal(first["rgb"], again["rgb"]) and torch.equal(first["sec_gt"], again["sec_gt"])


def test_set_max_jump_widens_the_gaps(roots):
    torch.manual_seed(0)
    dataset = davis_train(roots["davis"], crop_size=CROP)
    dataset.set_max_jump(1)
    for _ in range(5):
        numbers = sorted(int(name[:-4]) for name in dataset[0]["info"]["frames"])
        assert numbers[2] - numbers[0] == 2
    with pytest.raises(ValueError, match="at least 1"):
        dataset.set_max_jump(0)


def test_main_training_set_lists_davis_five_times(roots):
    combined = main_training_set(roots["davis"], roots["yv"], crop_size=CROP)
    davis, youtube = combined.datasets[0], combined.datasets[-1]
    assert len(combined) == 5 * len(davis) + len(youtube) == 13
    assert all(part is davis for part in combined.datasets[:5])
    assert [combined[i]["info"]["name"] for i in (0, 2, 10, 12)] == \
        ["synth-0000", "synth-0000", "synth00000", "synth00002"]
    assert len(repeat_concat([(davis, 2), (youtube, 3)])) == 2 * 2 + 3 * 3


def make_tiny_object_video(root: Path) -> VideoFolders:
    """One 3-frame 64x64 video: object 1 is 30x30 pixels, object 2 is 3x3 (under 100 even when cropped 2x)."""
    labels = np.zeros((64, 64), np.uint8)
    labels[17:47, 17:47] = 1
    labels[5:8, 5:8] = 2
    rgb = np.where(labels[..., None] > 0, 250, 10).astype(np.uint8).repeat(3, axis=2)
    (root / "JPEGImages" / "clip").mkdir(parents=True)
    for t in range(3):
        Image.fromarray(rgb).save(root / "JPEGImages" / "clip" / f"{t:05d}.jpg")
        write_indexed_png(root / "Annotations" / "clip" / f"{t:05d}.png", labels)
    return VideoFolders(root / "JPEGImages", root / "Annotations")


def test_bl30k_never_targets_objects_under_100_pixels(roots, tmp_path):
    torch.manual_seed(0)
    folders = make_tiny_object_video(tmp_path)
    bl30k = bl30k_train(tmp_path, crop_size=CROP)
    assert bl30k.min_object_pixels == 100
    assert all(bl30k[0]["selector"].tolist() == [1.0, 0.0] for _ in range(12))
    plain = VOSDataset(folders, crop_size=CROP, crop_scale=(0.25, 1.0))
    assert any(plain[0]["selector"].tolist() == [1.0, 1.0] for _ in range(12))
    check_sample(bl30k_train(roots["bl"], crop_size=CROP)[1])


def test_bad_video_folders_are_named(roots, tmp_path):
    with pytest.raises(InputError, match="train.txt: sequence list not found"):
        davis_train(tmp_path)
    listed = tmp_path / "DAVIS" / "2017" / "trainval" / "ImageSets" / "2017" / "train.txt"
    listed.parent.mkdir(parents=True)
    listed.write_text("ghost\n")
    with pytest.raises(InputError, match="JPEGImages/480p/ghost: folder of video ghost not found"):
        davis_train(tmp_path / "DAVIS")
    with pytest.raises(InputError, match="train_480p/JPEGImages: video frame folder not found"):
        youtube_train(tmp_path)


# ---------------------------------------------------------------- root checks


def test_check_roots_passes_on_complete_roots(roots):
    check_roots("static", "stage 0", static_root=roots["static"])
    check_roots("bl30k", "stage 1", bl_root=roots["bl"])
    check_roots("vos", "stage 3", yv_root=roots["yv"], davis_root=roots["davis"])


def test_check_roots_names_every_missing_path(roots, tmp_path):
    with pytest.raises(InputError) as error:
        check_roots("vos", "stage 3 (main training)", yv_root=tmp_path / "YouTube", davis_root=roots["davis"] / "..")
    message = str(error.value)
    assert message.startswith("stage 3 (main training) needs these datasets, missing or empty:")
    assert "2017/trainval/JPEGImages/480p: no such folder" in message
    assert "2017/trainval/Annotations/480p: no such folder" in message
    assert "ImageSets/2017/train.txt: no such file" in message
    assert f"{tmp_path / 'YouTube'}: no such folder" in message

    with pytest.raises(InputError, match=r"(?s)bl_root not given"):
        check_roots("bl30k", "stage 1", static_root=roots["static"])
    empty = tmp_path / "static"
    (empty / "fss").mkdir(parents=True)
    with pytest.raises(InputError) as error:
        check_roots("static", "stage 0", static_root=empty)
    message = str(error.value)
    assert f"{empty / 'fss'}: empty folder" in message and f"{empty / 'HRSOD_small'}: no such folder" in message
    with pytest.raises(ValueError, match="unknown kind of training data 'davis'"):
        check_roots("davis", "stage 3")


def test_check_roots_suggests_resizing_youtube(roots, tmp_path):
    (tmp_path / "YouTube" / "train").mkdir(parents=True)
    with pytest.raises(InputError, match="python scripts/resize_youtube.py --in .*YouTube/train --out"):
        check_roots("vos", "stage 2", yv_root=tmp_path / "YouTube", davis_root=roots["davis"])


def test_youtube_subset_list_keeps_the_named_videos_and_skips_absent_ones(roots, tmp_path, capsys):
    videos = sorted(p.name for p in (roots["yv"] / "train_480p" / "JPEGImages").iterdir())
    subset = tmp_path / "yv_subset.txt"
    subset.write_text(f"{videos[0]}\n{videos[2]}\nnot-in-this-release\n")
    dataset = youtube_train(roots["yv"], crop_size=CROP, video_list=subset)
    assert dataset.videos == [videos[0], videos[2]]
    assert "1 of 3 listed videos are not in" in capsys.readouterr().out
    assert len(main_training_set(roots["davis"], roots["yv"], CROP, subset)) == 5 * 2 + 2  # DAVIS train x5
    subset.write_text("ghost-1\nghost-2\n")
    with pytest.raises(InputError, match="yv_subset.txt: none of its 2 videos is in"):
        youtube_train(roots["yv"], crop_size=CROP, video_list=subset)
    with pytest.raises(InputError, match=r"(?s)missing.txt: no such file"):
        check_roots("vos", "stage 3", yv_root=roots["yv"], davis_root=roots["davis"], yv_subset=tmp_path / "missing.txt")
