"""Memory readout as pure tensor functions, shared by training and inference.

Shapes: memory keys (B, Ck, N) with N = T*h*w memory positions, query keys (B, Ck, P) with P = h*w
query positions, memory values (B, Cv, N). Similarities and affinities are query-major, (B, P, N):
each query position's row over the memory is contiguous, which is what the softmax and the top-k
selection run along (a large speed-up for the top-k over a long memory).
"""
import math
from typing import Iterable, Optional

import torch

SIMILARITIES = ("l2", "dot")
# exp() of a float32 is infinite above this. Code that exponentiates similarities without subtracting their
# maximum first (the authors' top-k softmax does) gives NaN for a query whose best similarity exceeds it.
FLOAT32_EXP_LIMIT = 88.72


def similarity(memory_key: torch.Tensor, query_key: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Similarity (B, P, N) between every query and memory position, scaled by 1/sqrt(Ck).

    `l2` is the negative squared distance with the query norm dropped (it cancels in the softmax,
    supplementary Algorithm 1); `dot` is the STM dot product (Table 1 ablation).
    """
    key_dim = memory_key.shape[1]
    query_t = query_key.transpose(1, 2)  # B, P, Ck
    if kind == "l2":
        memory_sq = memory_key.pow(2).sum(dim=1, keepdim=True)  # B, 1, N
        sim = torch.baddbmm(-memory_sq, query_t, memory_key, alpha=2)  # 2 kQ.kM - |kM|^2
    elif kind == "dot":
        sim = torch.bmm(query_t, memory_key)
    else:
        raise ValueError(f"unknown similarity {kind!r}; expected one of {SIMILARITIES}")
    return sim.div_(math.sqrt(key_dim))


def topk_softmax(sim: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the k largest similarities of each query position: weights and indices (B, P, k).

    The maximum is subtracted before exp(), so large keys cannot overflow.
    """
    values, indices = torch.topk(sim, k=min(top_k, sim.shape[2]), dim=2)
    return torch.softmax(values, dim=2), indices


def largest_similarity(memory_key: torch.Tensor, query_key: torch.Tensor, kind: str = "l2") -> float:
    """The largest similarity of any query position to the memory: above FLOAT32_EXP_LIMIT, a softmax that
    does not subtract the maximum overflows. Keys (B, Ck, N) and (B, Ck, P)."""
    return float(similarity(memory_key.float(), query_key.float(), kind).max())


def affinity(sim: torch.Tensor, top_k: Optional[int] = None) -> torch.Tensor:
    """Dense affinity (B, P, N): full softmax over memory, or top-k with zeros elsewhere."""
    if not top_k:
        return torch.softmax(sim, dim=2)
    weights, indices = topk_softmax(sim, top_k)
    return torch.zeros_like(sim).scatter_(2, indices, weights)


def readout(affinity_: torch.Tensor, memory_value: torch.Tensor) -> torch.Tensor:
    """Affinity-weighted sum of memory values: (B, Cv, N) x (B, P, N) -> (B, Cv, P)."""
    return torch.bmm(memory_value, affinity_.transpose(1, 2))


def sparse_readout(weights: torch.Tensor, indices: torch.Tensor, memory_value: torch.Tensor) -> torch.Tensor:
    """Top-k readout that gathers only the k selected values: cost independent of memory size.

    weights, indices: (B, P, k) from `topk_softmax`; memory_value: (B, Cv, N) -> (B, Cv, P).
    """
    batch, channels, _ = memory_value.shape
    positions, k = indices.shape[1:]
    flat_index = indices.reshape(batch, 1, positions * k).expand(-1, channels, -1)
    gathered = memory_value.gather(2, flat_index).view(batch, channels, positions, k)
    return (gathered * weights.unsqueeze(1)).sum(dim=3)


def best_query_positions(sims: Iterable[torch.Tensor]) -> torch.Tensor:
    """For each memory position, the query position (index into P) it matches best: (B, N).

    `sims` yields the similarity chunks (B, P_chunk, N) covering the query positions in order.
    """
    best_value, best_index, offset = None, None, 0
    for sim in sims:
        value, index = sim.max(dim=1)
        index = index + offset
        if best_value is None:
            best_value, best_index = value, index
        else:
            better = value > best_value
            best_value = torch.where(better, value, best_value)
            best_index = torch.where(better, index, best_index)
        offset += sim.shape[1]
    return best_index


def kernelize(sim: torch.Tensor, best_query: torch.Tensor, query_start: int, width: int, sigma: float) -> torch.Tensor:
    """Kernelized memory reading (KMN, Seong et al. 2020): add log g(i, j), a 2-D Gaussian of std `sigma`
    (in stride-16 pixels) around memory position i's best-matching query position, to S(i, j).

    sim (B, P_chunk, N) covers query positions query_start..query_start+P_chunk of a (h, width) grid;
    best_query (B, N) from `best_query_positions`. Softmax then gives weights prop. to exp(S) * g.
    """
    positions = torch.arange(query_start, query_start + sim.shape[1], device=sim.device)
    query_y = torch.div(positions, width, rounding_mode="floor").to(sim.dtype).unsqueeze(1)  # P_chunk, 1
    query_x = (positions % width).to(sim.dtype).unsqueeze(1)
    best_y = torch.div(best_query, width, rounding_mode="floor").to(sim.dtype).unsqueeze(1)  # B, 1, N
    best_x = (best_query % width).to(sim.dtype).unsqueeze(1)
    distance_sq = (query_y - best_y) ** 2 + (query_x - best_x) ** 2  # B, P_chunk, N
    return sim - distance_sq / (2 * sigma ** 2)
