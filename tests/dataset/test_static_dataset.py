"""StaticDataset on a generated static-image root: sample layout, 5x weights, determinism, bad input."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dataset.static_dataset import STATIC_SETS, StaticDataset
from dataset.synthetic_layouts import SyntheticSpec, write_layout
from util.fileio import InputError
from util.preprocess import IMAGENET_MEAN, IMAGENET_STD

CROP = 64
IMAGES = 2  # per folder; FSS has 2 classes of IMAGES


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "static"
    write_layout("static", root, SyntheticSpec(videos=IMAGES, frames=1, size=(64, 96), max_objects=1, seed=0,
                                               progress=False))
    return root


def test_lists_every_pair_and_repeats_big_and_hrsod_five_times(static_root):
    dataset = StaticDataset(static_root, crop_size=CROP)
    counts = Counter(path.relative_to(static_root).parts[0] for path in dataset.images)
    assert counts == {"fss": 2 * IMAGES, "DUTS-TR": IMAGES, "DUTS-TE": IMAGES, "ecssd": IMAGES,
                      "BIG_small": 5 * IMAGES, "HRSOD_small": 5 * IMAGES}
    assert len(dataset) == sum(counts.values())
    assert dict(STATIC_SETS)["BIG_small"] == dict(STATIC_SETS)["HRSOD_small"] == 5


def test_sample_layout_and_value_ranges(static_root):
    torch.manual_seed(0)
    dataset = StaticDataset(static_root, crop_size=CROP)
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        assert sample["rgb"].shape == (3, 3, CROP, CROP) and sample["rgb"].dtype == torch.float32
        low = min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
        high = max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD))
        assert low - 1e-5 <= sample["rgb"].min() and sample["rgb"].max() <= high + 1e-5
        assert sample["gt"].shape == sample["sec_gt"].shape == (3, 1, CROP, CROP)
        assert sample["gt"].dtype == torch.float32 and set(sample["gt"].unique().tolist()) <= {0.0, 1.0}
        assert sample["gt"].sum() > 0 and sample["sec_gt"].sum() == 0
        assert sample["selector"].tolist() == [1.0, 0.0]
        # Three different synthetic frames of one image.
        assert not torch.equal(sample["rgb"][0], sample["rgb"][1])
    assert sample["info"]["name"] == "HRSOD_small/synth_00001"
    assert sample["info"]["frames"] == ["synth_00001.jpg"] * 3
    assert dataset[0]["info"]["name"] == "fss/synth_class000/1"


def test_same_seed_same_sample(static_root):
    dataset = StaticDataset(static_root, crop_size=CROP)
    torch.manual_seed(7)
    first = dataset[3]
    torch.manual_seed(7)
    again = dataset[3]
    assert torch.equal(first["rgb"], again["rgb"]) and torch.equal(first["gt"], again["gt"])


def test_loader_workers_are_seeded_by_the_loader_generator(static_root):
    dataset = StaticDataset(static_root, crop_size=CROP)

    def first_batch(seed: int) -> dict:
        loader = DataLoader(dataset, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(seed))
        return next(iter(loader))

    one, two, other = first_batch(1), first_batch(1), first_batch(2)
    assert one["rgb"].shape == (4, 3, 3, CROP, CROP) and one["selector"].shape == (4, 2)
    assert torch.equal(one["rgb"], two["rgb"])
    assert not torch.equal(one["rgb"], other["rgb"])


def test_missing_folder_or_mask_is_named(static_root, tmp_path):
    with pytest.raises(InputError, match="nowhere/fss: static image folder not found"):
        StaticDataset(tmp_path / "nowhere")
    root = tmp_path / "static"
    (root / "ecssd").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "ecssd" / "lonely.jpg")
    with pytest.raises(InputError, match="ecssd/lonely.png: mask of lonely.jpg not found"):
        StaticDataset(root, sets=[("ecssd", 1)])
    (root / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no .jpg images"):
        StaticDataset(root, sets=[("empty", 1)])


def test_mask_of_another_size_is_named(tmp_path):
    folder = tmp_path / "static" / "ecssd"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "a.jpg")
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(folder / "a.png")
    dataset = StaticDataset(folder.parent, crop_size=CROP, sets=[("ecssd", 1)])
    with pytest.raises(InputError, match="a.png: mask is 64x32, image 64x64"):
        dataset[0]
