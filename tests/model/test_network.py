"""The network against the released layout and the reference implementation's training pass."""
import numpy as np
import pytest
import torch

from inference.reference import deterministic_stcn as build_deterministic_stcn
from model.losses import stcn_loss
from model.network import STCN


def _reference_layout(reference_dir):
    rows = (line.split("\t") for line in (reference_dir / "stcn_state_dict.tsv").read_text().splitlines())
    return [(name, shape) for name, shape, _ in rows]


def test_state_dict_has_the_released_keys_shapes_and_order(reference_dir):
    layout = [(k, str(tuple(v.shape))) for k, v in STCN().state_dict().items()]
    assert layout == _reference_layout(reference_dir)


def test_single_object_network_differs_only_in_value_encoder_conv1():
    multi, single = STCN().state_dict(), STCN(single_object=True).state_dict()
    assert multi.keys() == single.keys()
    differing = [k for k in multi if multi[k].shape != single[k].shape]
    assert differing == ["value_encoder.conv1.weight"]
    assert single["value_encoder.conv1.weight"].shape == (64, 4, 7, 7)


def test_unknown_similarity_fails_at_construction():
    with pytest.raises(ValueError, match="similarity"):
        STCN(similarity="cosine")


@pytest.fixture(scope="module")
def train_pass(reference_dir, deterministic_stcn):
    data = {k: torch.from_numpy(v) for k, v in np.load(reference_dir / "train_forward.npz").items()}
    first_masks = torch.cat([data["gt"][:, 0], data["sec_gt"][:, 0]], dim=1)
    with torch.no_grad():
        out = deterministic_stcn(data["rgb"], first_masks, data["selector"])
    return data, out


@pytest.mark.parametrize("name", ["logits_1", "logits_2", "mask_1", "mask_2"])
def test_training_pass_matches_reference(train_pass, name):
    data, out = train_pass
    expected = data[name]
    assert out[name].shape == expected.shape
    assert (out[name] - expected).abs().mean() <= 1e-4 * expected.abs().mean()


@pytest.mark.parametrize("iteration", [0, 45000, 100000])
def test_bootstrapped_loss_matches_reference(train_pass, iteration):
    data, out = train_pass
    losses = stcn_loss(out, data["gt"], data["sec_gt"], data["selector"], iteration)
    expected = float(data[f"loss_it{iteration}"])
    assert losses["total_loss"].item() == pytest.approx(expected, rel=1e-3)


def test_shared_frame_terms_keep_the_training_pass_and_its_gradients(reference_dir):
    """Batch 2, two objects: sharing the frame-only convolutions per frame changes rounding only."""
    net = build_deterministic_stcn()
    data = {k: torch.from_numpy(v) for k, v in np.load(reference_dir / "train_forward.npz").items()}
    first_masks = torch.cat([data["gt"][:, 0], data["sec_gt"][:, 0]], dim=1)
    results = {}
    for shared in (True, False):
        net.zero_grad()
        out = net(data["rgb"], first_masks, data["selector"], literal=not shared)
        loss = stcn_loss(out, data["gt"], data["sec_gt"], data["selector"], 0)["total_loss"]
        loss.backward()
        results[shared] = out, loss.item(), {n: p.grad.clone() for n, p in net.named_parameters()}
    (out_shared, loss_shared, grad_shared), (out_plain, loss_plain, grad_plain) = results[True], results[False]
    assert loss_shared == pytest.approx(loss_plain, rel=1e-5)
    for name in ("logits_1", "logits_2", "mask_1", "mask_2"):  # the reference test's criterion: a thread
        difference = (out_shared[name] - out_plain[name]).abs().mean()  # count more or less moves this much too
        assert difference <= 1e-4 * out_plain[name].abs().mean(), name
    for name, grad in grad_plain.items():  # (some gradients are 0 up to rounding: the key bias cancels in L2)
        assert (grad_shared[name] - grad).norm() <= 1e-3 * grad.norm() + 1e-6, name
    every_shared, every_plain = (torch.cat([g.flatten() for g in grads.values()]) for grads in (grad_shared, grad_plain))
    assert (every_shared - every_plain).norm() <= 1e-4 * every_plain.norm()


def test_chunked_topk_readout_equals_dense(deterministic_stcn):
    gen = torch.Generator().manual_seed(3)
    query_key = torch.randn(1, 64, 4, 6, generator=gen)
    memory_key = torch.randn(1, 64, 3, 4, 6, generator=gen)
    memory_value = torch.randn(1, 2, 512, 3, 4, 6, generator=gen)
    dense = deterministic_stcn.read_memory(query_key, memory_key, memory_value, top_k=5)
    chunked = deterministic_stcn.read_memory(query_key, memory_key, memory_value, top_k=5, query_chunk=7)
    torch.testing.assert_close(chunked, dense)
    full = deterministic_stcn.read_memory(query_key, memory_key, memory_value)
    assert full.shape == (1, 2, 512, 4, 6)


def test_single_object_training_pass_runs_and_backpropagates():
    net = STCN(single_object=True)
    frames = torch.randn(1, 3, 3, 32, 32)
    gt = (torch.rand(1, 3, 1, 32, 32) > 0.5).float()
    out = net(frames, gt[:, 0])
    assert out["logits_2"].shape == (1, 2, 32, 32) and out["mask_1"].shape == (1, 1, 32, 32)
    stcn_loss(out, gt, None, None, 0)["total_loss"].backward()
    assert net.value_encoder.conv1.weight.grad is not None


def _frame_and_masks(objects=3, size=(64, 96)):
    gen = torch.Generator().manual_seed(4)
    frame = torch.randn(1, 3, *size, generator=gen)
    masks = torch.rand(1, objects, *size, generator=gen)
    return frame, masks / masks.sum(dim=1, keepdim=True)


def test_frame_terms_give_the_same_values_and_logits(deterministic_stcn):
    net = deterministic_stcn
    frame, masks = _frame_and_masks()
    with torch.no_grad():
        features = net.encode_key(frame)
        plain = net.encode_value(frame, features.f16, masks)
        shared = net.encode_value(frame, features.f16, masks, net.value_encoder.frame_terms(features.f16))
        torch.testing.assert_close(shared, plain, rtol=1e-4, atol=1e-4)
        readout = torch.randn(1, 3, 512, 4, 6)
        torch.testing.assert_close(net.decode(readout, features, share_frame_terms=True), net.decode(readout, features),
                                   rtol=1e-4, atol=1e-4)


def test_folded_batchnorm_keeps_outputs(deterministic_state_dict):
    from model.fold import fold_batchnorm

    net = STCN()
    net.load_state_dict(deterministic_state_dict(net.state_dict()))
    net.eval()
    frame, masks = _frame_and_masks()
    with torch.no_grad():
        before = net.encode_key(frame), net.encode_value(frame, net.encode_key(frame).f16, masks)
        fold_batchnorm(net)
        after = net.encode_key(frame), net.encode_value(frame, net.encode_key(frame).f16, masks)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    for a, b in zip(after[0], before[0]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after[1], before[1], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(STCN().train())
