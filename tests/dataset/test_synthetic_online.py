"""Training sets that generate a fresh synthetic sample for every index."""
import pytest
import torch

from dataset.sampling import ClipSpec, SeededSamples
from dataset.synthetic_online import SyntheticStaticDataset, SyntheticVideoDataset


def _check_sample(sample, crop):
    assert sample["rgb"].shape == (3, 3, crop, crop) and sample["gt"].shape == (3, 1, crop, crop)
    for key in ("gt", "sec_gt"):
        assert set(sample[key].unique().tolist()) <= {0.0, 1.0}


def test_video_samples_are_fresh_seeded_and_follow_the_curriculum():
    dataset = SyntheticVideoDataset((64, 96), num_frames=12, crop_size=64)
    samples = SeededSamples(dataset)
    first, again, other = samples[(0, 7, 0)], samples[(0, 7, 0)], samples[(0, 8, 0)]
    _check_sample(first, 64)
    assert torch.equal(first["rgb"], again["rgb"])  # the sample seed decides everything
    assert not torch.equal(first["rgb"], other["rgb"])  # a new seed draws a new video
    assert first["gt"][0].sum() > 0 and first["selector"][0] == 1
    dataset.set_max_jump(1)
    frames = [int(f) for f in samples[(0, 9, 0)]["info"]["frames"]]
    assert all(abs(b - a) == 1 for a, b in zip(frames, frames[1:]))


def test_a_clip_spec_sets_the_frames_and_targets_of_a_sample():
    dataset = SyntheticVideoDataset((64, 96), num_frames=12, crop_size=64, clip=ClipSpec(frames=5, max_targets=1))
    for seed in range(4):
        sample = SeededSamples(dataset)[(0, seed, 0)]
        assert sample["rgb"].shape == (5, 3, 64, 64) and len(sample["info"]["frames"]) == 5
        assert sample["selector"].tolist() == [1.0, 0.0] and sample["sec_gt"].sum() == 0
    with pytest.raises(ValueError, match="at least 13 frames"):
        SyntheticVideoDataset((64, 96), num_frames=12, clip=ClipSpec(frames=13))
    with pytest.raises(ValueError, match="1 or 2 targets"):
        ClipSpec(max_targets=3)


def test_static_samples_are_three_warped_frames_of_one_object():
    sample = SeededSamples(SyntheticStaticDataset((64, 96), crop_size=48))[(0, 3, 0)]
    _check_sample(sample, 48)
    assert sample["sec_gt"].sum() == 0 and sample["selector"].tolist() == [1.0, 0.0]


def test_a_pool_draws_every_sample_from_the_same_few_videos(monkeypatch):
    import dataset.synthetic_online as online
    from dataset.synthetic import generate_video

    def videos_drawn(pool: int) -> int:
        seen = set()

        def recording(rng, *args, **kwargs):
            seen.add(rng.bit_generator.state["state"]["state"])  # identifies the video being generated
            return generate_video(rng, *args, **kwargs)

        monkeypatch.setattr(online, "generate_video", recording)
        samples = SeededSamples(SyntheticVideoDataset((48, 64), num_frames=6, crop_size=48, pool=pool))
        for index in range(12):
            samples[(0, index, 0)]
        return len(seen)

    assert videos_drawn(pool=2) == 2
    assert videos_drawn(pool=0) == 12  # no pool: a new video for every sample
