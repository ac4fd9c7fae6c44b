"""Soft aggregation: merges independent per-object probabilities into one distribution per pixel."""
import torch

EPS = 1e-7


def aggregate_logits(prob: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Logits over [background, objects] from K object probabilities along `dim` (K -> K+1 channels).

    The background is prod(1 - p); each probability is clamped and turned into its odds' logarithm.
    Computed in float32 whatever the autocast dtype: 1 - 1e-7 is 1 in fp16 and bf16, and log(p / (1 - p))
    would overflow.
    """
    prob = prob.float()
    background = torch.prod(1 - prob, dim=dim, keepdim=True)
    full = torch.cat([background, prob], dim=dim).clamp(EPS, 1 - EPS)
    return torch.log(full / (1 - full))


def aggregate(prob: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Probabilities over [background, objects] that sum to one along `dim`."""
    return torch.softmax(aggregate_logits(prob, dim), dim=dim)
