"""The propagation core against the reference inference, and its memory schedule."""
import numpy as np
import pytest
import torch

from inference.core import InferenceCore, MemorySchedule, plan_frames
from inference.reference import segment_reference_clip
from util.preprocess import normalise


@pytest.fixture(scope="module")
def clip(reference_dir):
    return dict(np.load(reference_dir / "inference_2obj.npz"))


def run(core, frames, first_mask):
    probs = []
    for t, frame in enumerate(frames):
        mask = first_mask if t == 0 else None
        probs.append(core.step(normalise(frame), mask, is_last=t == len(frames) - 1))
    return torch.stack(probs, dim=1).numpy()


def test_reproduces_reference_inference(reference_dir, deterministic_stcn):
    agreement = segment_reference_clip(deterministic_stcn, reference_dir)
    assert agreement["frames"] == 10 and agreement["objects"] == 2
    assert agreement["mean_abs_diff"] <= 1e-4
    assert agreement["label_agreement"] >= 0.999


def test_memory_schedule_counts_frames_from_the_last_memory_frame(clip, deterministic_stcn):
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=3))
    frames = clip["frames"][:8]
    run(core, frames, clip["first_mask"])
    bank = core.groups[0].bank
    assert bank.num_frames == 3 and not bank.has_temporary  # frames 0, 3, 6; the last frame (7) not encoded
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=3, include_last=True))
    for t, frame in enumerate(frames[:5]):
        core.step(normalise(frame), clip["first_mask"] if t == 0 else None)
    assert core.groups[0].bank.num_frames == 2 and core.groups[0].bank.has_temporary  # 0, 3 and temp 4


def test_max_mem_frames_keeps_first_and_bounds_memory(clip, deterministic_stcn):
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=1, max_mem_frames=3))
    run(core, clip["frames"], clip["first_mask"])
    bank = core.groups[0].bank
    keys, values = bank.memory()
    positions = (96 // 16) * (160 // 16)
    assert bank.num_frames == 3 and keys.shape[2] == 3 * positions
    assert values.shape[:3] == (1, 2, 512)


def test_late_object_starts_its_own_memory_and_takes_over_its_pixels(clip, deterministic_stcn):
    first = np.where(clip["first_mask"] == 2, 0, clip["first_mask"])  # only object 1 at frame 0
    late = np.where(clip["first_mask"] == 2, 7, 0).astype(np.uint8)  # object "7" appears at frame 2
    core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=5))
    probs = []
    for t, frame in enumerate(clip["frames"][:6]):
        mask = first if t == 0 else late if t == 2 else None
        probs.append(core.step(normalise(frame), mask))
    assert core.object_ids == [1, 7]
    assert [g.indices for g in core.groups] == [[0], [1]]
    assert core.groups[0].bank.num_frames == 2 and core.groups[1].bank.num_frames == 1  # frames 0, 2 / 2
    assert probs[1].shape[0] == 2 and probs[2].shape[0] == 3
    labels = probs[2].argmax(dim=0).numpy()
    assert (labels[late == 7] == 2).all()  # the given mask owns its pixels
    for p in probs:
        torch.testing.assert_close(p.sum(dim=0), torch.ones(p.shape[1:]))
    with pytest.raises(ValueError, match="already given"):
        core.step(normalise(clip["frames"][6]), late)


def test_plan_skips_frames_that_are_neither_asked_for_nor_memory():
    annotated = [False, True, False, False, False, False, False, False, True, False, False, False]
    required = [False, True, False, False, False, False, True, False, True, False, False, True]
    plan = plan_frames(annotated, required, MemorySchedule(mem_every=3))
    # 0 before the annotation; 4 and 7 are memory frames (3 after 1 and after 4); 8 annotated resets
    assert plan == [False, True, False, False, True, False, True, True, True, False, False, True]
    assert all(plan_frames(annotated, required, MemorySchedule(mem_every=3, include_last=True))[1:])
