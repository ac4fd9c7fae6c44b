"""Shared fixtures: where the reference data lives, and a fixed CPU thread count."""
from pathlib import Path

import pytest
import torch

from dataset.synthetic_layouts import SyntheticSpec, write_layout
from inference.reference import DEFAULT_REFERENCE
from inference.reference import deterministic_state_dict as make_deterministic_state_dict
from inference.reference import deterministic_stcn as build_deterministic_stcn

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference fixtures produced by the authors' implementation (the project's reference/)."""
    return DEFAULT_REFERENCE


@pytest.fixture(scope="session")
def deterministic_stcn():
    """The multi-object network with the deterministic reference weights, in eval mode."""
    return build_deterministic_stcn()


@pytest.fixture(scope="session")
def deterministic_state_dict():
    """`deterministic_state_dict(layout)`: the weights the reference fixtures were made with."""
    return make_deterministic_state_dict


# Generated datasets and saved weights shared by the tests that run the entry scripts.
@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """The deterministic reference weights saved as a released-layout checkpoint."""
    path = tmp_path_factory.mktemp("weights") / "stcn.pth"
    torch.save(build_deterministic_stcn().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def davis_root(tmp_path_factory):
    """A synthetic DAVIS root (<root>/trainval) of 4 sequences."""
    root = tmp_path_factory.mktemp("davis") / "DAVIS" / "2017"
    # 72 x 100 is not a multiple of 16: exercises padding and un-padding
    write_layout("davis", root / "trainval", SyntheticSpec(videos=4, frames=6, size=(72, 100), max_objects=3,
                                                          seed=1, progress=False))
    return root


@pytest.fixture(scope="session")
def youtube_root(tmp_path_factory):
    """A synthetic YouTubeVOS root with late objects and sparse label ids."""
    root = tmp_path_factory.mktemp("youtube") / "YouTube"
    write_layout("youtube", root, SyntheticSpec(videos=2, frames=12, size=(64, 112), max_objects=3, seed=2,
                                                progress=False))
    return root


@pytest.fixture(scope="session")
def data_roots(tmp_path_factory):
    """Training data of every stage: DAVIS 2017, YouTubeVOS (train_480p; YT_full/valid for evaluation),
    static images and BL30K."""
    root = tmp_path_factory.mktemp("train_data")
    spec = dict(size=(80, 112), max_objects=3, progress=False)
    write_layout("davis", root / "DAVIS" / "2017" / "trainval", SyntheticSpec(videos=4, frames=10, seed=3, **spec))
    write_layout("youtube", root / "YT_full", SyntheticSpec(videos=3, frames=20, seed=4, **spec))
    (root / "YouTube").mkdir()
    (root / "YT_full" / "train").rename(root / "YouTube" / "train_480p")
    write_layout("static", root / "static", SyntheticSpec(videos=3, frames=1, seed=5, **spec))
    write_layout("bl30k", root / "BL30K", SyntheticSpec(videos=2, frames=6, seed=10, **spec))
    return root


@pytest.fixture(scope="session")
def davis_four_videos(tmp_path_factory):
    """A synthetic DAVIS 2017 root whose val list holds 4 videos of 10 frames (for runs split or cut mid-set)."""
    root = tmp_path_factory.mktemp("davis4") / "DAVIS" / "2017"
    write_layout("davis", root / "trainval", SyntheticSpec(videos=4, frames=10, size=(72, 100), max_objects=2,
                                                          seed=6, progress=False))
    names = sorted(p.name for p in (root / "trainval" / "JPEGImages" / "480p").iterdir())
    (root / "trainval" / "ImageSets" / "2017" / "val.txt").write_text("\n".join(names) + "\n")
    return root
