"""inference/runner.py: `propagate`, the one loop under every script and the API, against the core."""
import numpy as np
import pytest
import torch

from inference.config import RunOptions
from inference.core import InferenceCore, MemorySchedule
from inference.runner import propagate
from util.preprocess import normalise


@pytest.fixture(scope="module")
def clip(reference_dir):
    return np.load(reference_dir / "inference_2obj.npz")


def test_propagate_is_the_core_frame_by_frame_with_the_objects_own_labels(clip, deterministic_stcn):
    first = np.where(clip["first_mask"] > 0, clip["first_mask"] + 4, 0).astype(np.uint8)  # labels 5 and 6
    frames = [(t, frame, first if t == 0 else None) for t, frame in enumerate(clip["frames"][:5])]
    done = list(propagate(deterministic_stcn, iter(frames), MemorySchedule(mem_every=2)))
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=2))
    for t, frame, mask in frames:
        prob = core.step(normalise(frame), mask)
        torch.testing.assert_close(done[t].prob, prob, rtol=0, atol=1e-6)
    assert [d.index for d in done] == [0, 1, 2, 3, 4] and done[-1].object_ids == [5, 6]
    assert set(np.unique(done[0].labels)) == {0, 5, 6} and all(d.seconds > 0 for d in done)


def test_frames_left_out_are_skipped_as_the_core_skips_them(clip, deterministic_stcn):
    frames = [(t, clip["frames"][t], clip["first_mask"] if t == 0 else None) for t in (0, 3, 5)]
    done = list(propagate(deterministic_stcn, iter(frames), MemorySchedule(mem_every=3), last_index=5))
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=3))
    expected = []
    for t in range(6):
        if t in (0, 3, 5):
            expected.append(core.step(normalise(clip["frames"][t]), clip["first_mask"] if t == 0 else None,
                                      is_last=t == 5))
        else:
            core.skip()
    assert [d.index for d in done] == [0, 3, 5]
    for segmented, prob in zip(done, expected):
        torch.testing.assert_close(segmented.prob, prob, rtol=0, atol=1e-6)


def test_processing_size_and_flip_return_probabilities_at_the_stored_size(clip, deterministic_stcn):
    frames = [(t, frame, clip["first_mask"] if t == 0 else None) for t, frame in enumerate(clip["frames"][:3])]
    height, width = clip["frames"].shape[1:3]
    for options in (RunOptions(size=64), RunOptions(flip=True)):
        done = list(propagate(deterministic_stcn, iter(frames), MemorySchedule(), options))
        assert all(d.prob.shape == (3, height, width) and d.labels.shape == (height, width) for d in done)
    flipped = [(t, frame[:, ::-1].copy(), None if mask is None else mask[:, ::-1].copy()) for t, frame, mask in frames]
    plain = list(propagate(deterministic_stcn, iter(flipped), MemorySchedule()))
    torch.testing.assert_close(done[-1].prob, plain[-1].prob.flip(-1), rtol=0, atol=1e-5)
