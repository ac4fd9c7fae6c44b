"""Memory readout: similarity, top-k softmax and readout against slow, explicit computations."""
import math

import pytest
import torch

from model import memory
from model.aggregate import aggregate


def _keys(batch=2, key_dim=8, mem=30, query=12, scale=1.0):
    gen = torch.Generator().manual_seed(0)
    return (scale * torch.randn(batch, key_dim, mem, generator=gen),
            scale * torch.randn(batch, key_dim, query, generator=gen))


def test_l2_affinity_is_softmax_of_negative_squared_distance():
    memory_key, query_key = _keys()
    key_dim = memory_key.shape[1]
    fast = memory.affinity(memory.similarity(memory_key, query_key, "l2"))
    slow = torch.empty_like(fast)
    for b in range(memory_key.shape[0]):
        for j in range(query_key.shape[2]):
            dist = ((memory_key[b] - query_key[b, :, j:j + 1]) ** 2).sum(dim=0)  # full ||kM - kQ||^2
            slow[b, j, :] = torch.softmax(-dist / math.sqrt(key_dim), dim=0)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_dot_similarity_differs_from_l2():
    memory_key, query_key = _keys()
    l2 = memory.affinity(memory.similarity(memory_key, query_key, "l2"))
    dot = memory.affinity(memory.similarity(memory_key, query_key, "dot"))
    expected = torch.softmax(query_key.transpose(1, 2) @ memory_key / math.sqrt(memory_key.shape[1]), dim=2)
    torch.testing.assert_close(dot, expected)
    assert (l2 - dot).abs().max() > 1e-2


def test_unknown_similarity_is_refused():
    memory_key, query_key = _keys()
    with pytest.raises(ValueError, match="cosine"):
        memory.similarity(memory_key, query_key, "cosine")


@pytest.mark.parametrize("top_k", [1, 5, 20])
def test_topk_keeps_exactly_k_weights_summing_to_one(top_k):
    memory_key, query_key = _keys()
    weights = memory.affinity(memory.similarity(memory_key, query_key), top_k=top_k)
    assert weights.shape == (2, 12, 30)  # B, P, N
    assert ((weights > 0).sum(dim=2) == top_k).all()
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(2, 12))


def test_topk_softmax_is_stable_for_large_keys():
    memory_key, query_key = _keys(scale=1e3)  # exp() of these similarities overflows without the max subtracted
    weights = memory.affinity(memory.similarity(memory_key, query_key), top_k=20)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.sum(dim=2), torch.ones(2, 12))


def test_sparse_readout_equals_dense_topk_readout():
    memory_key, query_key = _keys()
    value = torch.randn(2, 16, memory_key.shape[2], generator=torch.Generator().manual_seed(1))
    sim = memory.similarity(memory_key, query_key)
    dense = memory.readout(memory.affinity(sim, top_k=7), value)
    weights, indices = memory.topk_softmax(sim, 7)
    torch.testing.assert_close(memory.sparse_readout(weights, indices, value), dense, rtol=1e-5, atol=1e-6)


def test_aggregate_sums_to_one_over_background_and_objects():
    prob = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    full = aggregate(prob, dim=1)
    assert full.shape == (2, 4, 8, 8)
    torch.testing.assert_close(full.sum(dim=1), torch.ones(2, 8, 8))
    # a pixel that no object claims is background; one object at certainty takes the pixel
    certain = aggregate(torch.tensor([[0.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2), dim=1)
    assert certain[0, 0, 0, 0].item() > 0.99 and certain[0, 2, 0, 1].item() > 0.99
