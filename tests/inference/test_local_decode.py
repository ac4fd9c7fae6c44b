"""Object-local decoding: the boxes, their cost rule, decoding inside them, and the core's bookkeeping."""
import numpy as np
import pytest
import torch

from inference import local_decode
from inference.config import EvalConfig, add_inference_args
from inference.core import InferenceCore, MemorySchedule
from inference.reference import segment_reference_clip
from model.network import KeyFeatures
from util.cli import ArgumentParser
from util.fileio import InputError
from util.preprocess import normalise


def test_boxes_are_the_cells_grown_by_the_margin_and_clipped():
    presence = torch.zeros(3, 6, 10, dtype=torch.bool)
    presence[0, 2, 3] = presence[0, 3, 5] = True  # one object, two cells
    presence[1, 0, 9] = True  # in a corner
    boxes = local_decode.object_boxes(presence, margin=1)
    assert boxes == [(1, 5, 2, 7), (0, 2, 8, 10), None]  # the third object is nowhere


def test_boxes_are_decoded_only_when_they_cost_less_than_whole_frames():
    """The cost counts each box with its halo: at 480p (30 x 54 cells) small boxes pay, at 96x160 (6 x 10
    cells) a halo covers the frame and only objects found nowhere are saved."""
    assert local_decode.worth_it([(10, 14, 10, 16), None, (20, 26, 30, 38)], 30, 54)
    assert not local_decode.worth_it([(0, 30, 0, 54), (1, 29, 2, 50)], 30, 54)
    assert not local_decode.worth_it([(2, 4, 4, 6), (3, 4, 5, 6)], 6, 10)
    assert local_decode.worth_it([(2, 3, 2, 3), None, None], 6, 10)
    assert local_decode.worth_it([None, None], 6, 10)  # nobody anywhere: nothing to decode


def test_mask_cells_hold_the_largest_probability_of_each_cell():
    prob = torch.zeros(1, 32, 48)
    prob[0, 20, 40] = 0.7
    cells = local_decode.mask_cells(prob)
    assert cells.shape == (1, 2, 3) and cells[0, 1, 2] == pytest.approx(0.7) and cells.sum() == pytest.approx(0.7)


@pytest.fixture(scope="module")
def decoded(deterministic_stcn):
    """A frame's features, a readout of 3 objects and their whole-frame logits."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        features = deterministic_stcn.encode_key(torch.randn(1, 3, 96, 160, generator=gen))
        readout = torch.randn(1, 3, 512, 6, 10, generator=gen)
        return features, readout, deterministic_stcn.decode(readout, features)


def test_decoding_in_boxes_is_the_whole_frame_decoder_inside_and_background_elsewhere(deterministic_stcn, decoded):
    features, readout, whole = decoded
    box = (1, 4, 2, 7)
    with torch.no_grad():
        logits = local_decode.decode_in_boxes(deterministic_stcn, readout, features, [(0, 6, 0, 10), box, None])
    torch.testing.assert_close(logits[:, 0], whole[:, 0], rtol=1e-4, atol=1e-4)  # a whole-frame box: exact
    torch.testing.assert_close(logits[0, 1, 16:64, 32:112], whole[0, 1, 16:64, 32:112], rtol=1e-4, atol=1e-4)
    outside = torch.ones(96, 160, dtype=torch.bool)
    outside[16:64, 32:112] = False
    assert (logits[0, 1][outside] == local_decode.BACKGROUND_LOGIT).all()
    assert (logits[0, 2] == local_decode.BACKGROUND_LOGIT).all()


def test_the_halo_makes_a_box_in_a_large_frame_equal_to_the_whole_frame(deterministic_stcn):
    """A box far from the frame's edges (20 x 30 cells): decoded with its halo it gives the whole-frame
    logits; decoded as a bare crop it does not (the crop's edges reach into it)."""
    gen = torch.Generator().manual_seed(1)
    box, inside = (7, 12, 10, 18), (slice(7 * 16, 12 * 16), slice(10 * 16, 18 * 16))
    with torch.no_grad():
        features = deterministic_stcn.encode_key(torch.randn(1, 3, 320, 480, generator=gen))
        readout = torch.randn(1, 1, 512, 20, 30, generator=gen)
        whole = deterministic_stcn.decode(readout, features)[0, 0][inside]
        local = local_decode.decode_in_boxes(deterministic_stcn, readout, features, [box])[0, 0][inside]
        bare = deterministic_stcn.decode(readout[..., 7:12, 10:18], local_decode.crop_features(features, box))[0, 0]
    torch.testing.assert_close(local, whole, rtol=1e-4, atol=1e-4)
    assert (bare - whole).abs().max() > 1e-2


def test_an_audit_finds_the_objects_that_reach_beyond_their_boxes():
    logits = torch.full((3, 96, 160), -10.0)
    logits[0, 20, 40] = 5.0  # inside its box
    logits[1, 90, 150] = 5.0  # outside its box
    logits[2, 50, 50] = 5.0  # an object with no box at all
    assert local_decode.escapes_box(logits, [(1, 3, 2, 4), (0, 2, 0, 2), None]) == [False, True, True]


def test_an_undecided_network_is_decoded_over_whole_frames(reference_dir, deterministic_stcn):
    """The reference weights leave every pixel near 0.5: the first frame after the annotation is an audit,
    and after it every object may be anywhere, so whole frames are decoded and the labels are exact."""
    clip = np.load(reference_dir / "inference_2obj.npz")
    cores = [InferenceCore(deterministic_stcn, MemorySchedule(mem_every=5), local_decode=local)
             for local in (False, True)]
    for t, frame in enumerate(clip["frames"][:4]):
        probs = [core.step(normalise(frame), clip["first_mask"] if t == 0 else None) for core in cores]
        assert torch.equal(probs[0].argmax(dim=0), probs[1].argmax(dim=0))
    assert cores[1].local.whole_frame_decodes == 2 * 3


def test_memory_carries_each_objects_mask_cells_only_for_local_decoding(reference_dir, deterministic_stcn):
    clip = np.load(reference_dir / "inference_2obj.npz")
    for local in (True, False):
        core = InferenceCore(deterministic_stcn, MemorySchedule(mem_every=5), local_decode=local)
        core.step(normalise(clip["frames"][0]), clip["first_mask"])
        _, values = core.groups[0].bank.memory()
        assert values.shape[2] == 512 + (1 if local else 0)
        if local:
            first = torch.from_numpy(clip["first_mask"] == 1).float()[None]
            torch.testing.assert_close(values[0, 0, -1], local_decode.mask_cells(first)[0].flatten(), rtol=0, atol=1e-6)
            assert core.local.previous_cells.shape == (2, 6, 10)


def test_local_decoding_keeps_the_reference_agreement(reference_dir, deterministic_stcn):
    """The reference's weights leave every pixel undecided, so every cell may hold every object: the whole
    frame is decoded and nothing changes."""
    exact = segment_reference_clip(deterministic_stcn, reference_dir)
    local = segment_reference_clip(deterministic_stcn, reference_dir, local_decode=True)
    assert local == exact


def test_whole_frames_are_decoded_unless_local_decoding_is_asked_for(tmp_path):
    parser = ArgumentParser()
    add_inference_args(parser)
    (tmp_path / "m.pth").write_bytes(b"weights")
    base = ["--model", str(tmp_path / "m.pth"), "--output", str(tmp_path / "out"), "--device", "cpu"]
    assert not EvalConfig.from_args(parser.parse_args(base)).options.local_decode
    assert not EvalConfig.from_args(parser.parse_args(base + ["--exact_decode"])).options.local_decode  # older commands
    assert EvalConfig.from_args(parser.parse_args(base + ["--local_decode"])).options.local_decode
    with pytest.raises(InputError, match="not allowed with argument"):
        parser.parse_args(base + ["--local_decode", "--exact_decode"])


class _CertainDecoder:
    """A stand-in network that records the size (in cells) of every decode and is certain of the
    background everywhere."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def decode(self, readout: torch.Tensor, features) -> torch.Tensor:
        height, width = readout.shape[-2:]
        self.sizes.append((height, width))
        return readout.new_full((1, readout.shape[1], height * 16, width * 16), -10.0)


def test_the_local_decoder_audits_a_whole_frame_then_decodes_boxes_until_the_next_audit():
    network, (height, width) = _CertainDecoder(), (30, 54)
    decoder = local_decode.LocalDecoder(network, margin=1)
    features = KeyFeatures(*(torch.zeros(1, 1, height * scale, width * scale) for scale in (1, 1, 1, 2, 4)))
    readout = torch.zeros(1, 1, 2, height, width)  # one object: one value channel and its read-out mask cells
    readout[0, 0, -1, 10, 20] = 1.0
    decoder.observe(torch.zeros(1, height * 16, width * 16))
    for _ in range(local_decode.AUDIT_EVERY + 1):
        decoder.decode(readout, features)
    side = 1 + 2 * (1 + local_decode.HALO)  # the object's cell, the margin and the halo on both sides
    in_box = (side, side)
    assert network.sizes == [(height, width)] + [in_box] * (local_decode.AUDIT_EVERY - 1) + [(height, width)]
    assert decoder.escaping == [False] and decoder.whole_frame_decodes == 2
    decoder.audit_next()  # objects joined: the next frame is an audit
    decoder.decode(readout, features)
    assert network.sizes[-1] == (height, width)
