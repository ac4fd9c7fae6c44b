"""Shared fixtures: where the reference data lives, and a fixed CPU thread count."""
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference fixtures produced by the authors' implementation (../shared/reference)."""
    if not REFERENCE.is_dir():
        pytest.fail(f"reference data not found at {REFERENCE}: clone the project beside shared/")
    return REFERENCE


@pytest.fixture(scope="session")
def deterministic_stcn(reference_dir):
    """The multi-object network with the deterministic reference weights, in eval mode."""
    from util.reference import deterministic_stcn as build

    return build(reference_dir)


@pytest.fixture(scope="session")
def deterministic_state_dict(reference_dir):
    """`deterministic_state_dict(reference)` of the reference's detweights.py."""
    from util.reference import deterministic_weights_fn

    return deterministic_weights_fn(reference_dir)
