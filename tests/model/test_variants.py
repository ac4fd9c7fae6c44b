"""Supplementary E: key encoder variants and kernelized memory reading (KMN)."""
import pytest
import torch

from model import memory
from model.backbones import BACKBONES, infer_backbone
from model.fold import fold_batchnorm
from model.network import STCN


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbones_build_and_are_recognised_from_their_weights(backbone):
    net = STCN(backbone=backbone).eval()
    assert infer_backbone(net.state_dict()) == backbone
    with torch.no_grad():
        features = net.encode_key(torch.randn(1, 3, 64, 64))
        assert features.f16.shape == (1, 1024, 4, 4) and features.key.shape == (1, 64, 4, 4)
        before = net.encode_key(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
        fold_batchnorm(net)
        after = net.encode_key(torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(after.f16, before.f16, rtol=1e-4, atol=1e-4)


def test_resnet50_variant_keeps_the_released_layout(reference_dir):
    rows = (reference_dir / "stcn_state_dict.tsv").read_text().splitlines()
    assert list(STCN(backbone="resnet50").state_dict()) == [row.split("\t")[0] for row in rows]


def test_kernel_modulates_the_affinity_as_specified():
    # a 2 x 3 query grid; memory position 0 matches query (1, 2) best, memory position 1 matches (0, 0)
    sim = torch.tensor([[[0.0, 0.1, 0.2, 0.3, 0.4, 0.9],
                         [0.8, 0.1, 0.0, 0.2, 0.3, 0.1]]]).transpose(1, 2)  # B, P=6, N=2
    best = memory.best_query_positions(iter([sim[:, :4], sim[:, 4:]]))  # found across query chunks
    assert best.tolist() == [[5, 0]]
    sigma = 2.0
    kernelized = memory.kernelize(sim, best, 0, width=3, sigma=sigma)
    ys, xs = torch.tensor([0, 0, 0, 1, 1, 1.0]), torch.tensor([0, 1, 2, 0, 1, 2.0])
    for j in range(6):  # each query position's weights over the memory: prop. to exp(S) * g
        gaussian = torch.exp(-torch.tensor([(ys[j] - 1) ** 2 + (xs[j] - 2) ** 2,
                                            (ys[j] - 0) ** 2 + (xs[j] - 0) ** 2]) / (2 * sigma ** 2))
        weights = torch.exp(sim[0, j]) * gaussian
        torch.testing.assert_close(torch.softmax(kernelized[0, j], dim=0), weights / weights.sum())
    # a chunk that starts later is offset correctly
    torch.testing.assert_close(memory.kernelize(sim[:, 4:], best, 4, 3, sigma), kernelized[:, 4:])


def test_kernelized_readout_is_chunk_independent_and_changes_the_readout():
    net = STCN().eval()
    gen = torch.Generator().manual_seed(5)
    query_key = torch.randn(1, 64, 4, 6, generator=gen)
    memory_key = torch.randn(1, 64, 2, 4, 6, generator=gen)
    memory_value = torch.randn(1, 2, 512, 2, 4, 6, generator=gen)
    plain = net.read_memory(query_key, memory_key, memory_value, top_k=5)
    whole = net.read_memory(query_key, memory_key, memory_value, top_k=5, kernel_sigma=1.0)
    chunked = net.read_memory(query_key, memory_key, memory_value, top_k=5, query_chunk=5, kernel_sigma=1.0)
    torch.testing.assert_close(chunked, whole)
    assert (whole - plain).abs().max() > 1e-3
