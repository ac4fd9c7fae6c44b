"""Memory readout as pure tensor functions, shared by training and inference.

Shapes: memory keys (B, Ck, N) with N = T*h*w memory positions, query keys (B, Ck, P) with P = h*w
query positions, memory values (B, Cv, N). The affinity is (B, N, P): a softmax over memory positions.
"""
import math
from typing import Optional

import torch

SIMILARITIES = ("l2", "dot")


def similarity(memory_key: torch.Tensor, query_key: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Similarity (B, N, P) between every memory and query position, scaled by 1/sqrt(Ck).

    `l2` is the negative squared distance with the query norm dropped (it cancels in the softmax,
    supplementary Algorithm 1); `dot` is the STM dot product (Table 1 ablation).
    """
    key_dim = memory_key.shape[1]
    dot = memory_key.transpose(1, 2) @ query_key  # B, N, P
    if kind == "l2":
        memory_sq = memory_key.pow(2).sum(dim=1).unsqueeze(2)  # B, N, 1
        sim = 2 * dot - memory_sq
    elif kind == "dot":
        sim = dot
    else:
        raise ValueError(f"unknown similarity {kind!r}; expected one of {SIMILARITIES}")
    return sim / math.sqrt(key_dim)


def topk_softmax(sim: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the k largest similarities of each query position: weights and indices (B, k, P).

    The maximum is subtracted before exp(), so large keys cannot overflow.
    """
    values, indices = torch.topk(sim, k=min(top_k, sim.shape[1]), dim=1)
    return torch.softmax(values, dim=1), indices


def affinity(sim: torch.Tensor, top_k: Optional[int] = None) -> torch.Tensor:
    """Dense affinity (B, N, P): full softmax over memory, or top-k with zeros elsewhere."""
    if not top_k:
        return torch.softmax(sim, dim=1)
    weights, indices = topk_softmax(sim, top_k)
    return torch.zeros_like(sim).scatter_(1, indices, weights)


def readout(affinity_: torch.Tensor, memory_value: torch.Tensor) -> torch.Tensor:
    """Affinity-weighted sum of memory values: (B, Cv, N) x (B, N, P) -> (B, Cv, P)."""
    return torch.bmm(memory_value, affinity_)


def sparse_readout(weights: torch.Tensor, indices: torch.Tensor, memory_value: torch.Tensor) -> torch.Tensor:
    """Top-k readout that gathers only the k selected values: cost independent of memory size.

    weights, indices: (B, k, P) from `topk_softmax`; memory_value: (B, Cv, N) -> (B, Cv, P).
    """
    batch, channels, _ = memory_value.shape
    k, positions = indices.shape[1:]
    flat_index = indices.reshape(batch, 1, k * positions).expand(-1, channels, -1)
    gathered = memory_value.gather(2, flat_index).view(batch, channels, k, positions)
    return (gathered * weights.unsqueeze(1)).sum(dim=2)
