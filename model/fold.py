"""Inference-only rewrite: fold each BatchNorm into the convolution before it.

In eval mode a BatchNorm is an affine map per channel, so it can be merged into the preceding
convolution's weight and bias; the network then runs one layer fewer per pair. The state dict layout
changes, so fold only a network that is loaded and will not be saved.
"""
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) child names: `convN`/`bnN` siblings, and neighbours in a Sequential (downsample, ASPP)."""
    names = dict(module.named_children())
    pairs = [(f"conv{n}", f"bn{n}") for n in range(1, 4) if f"conv{n}" in names and f"bn{n}" in names]
    if isinstance(module, nn.Sequential):
        pairs += [(str(i), str(i + 1)) for i in range(len(module) - 1)]
    return [(c, b) for c, b in pairs if isinstance(names[c], nn.Conv2d) and isinstance(names[b], nn.BatchNorm2d)]


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """Fold every conv + BatchNorm pair of `network` in place (it must be in eval mode); returns it."""
    if network.training:
        raise ValueError("fold_batchnorm needs a network in eval mode")
    for module in list(network.modules()):
        for conv_name, bn_name in _pairs(module):
            fused = fuse_conv_bn_eval(getattr(module, conv_name), getattr(module, bn_name))
            setattr(module, conv_name, fused)
            setattr(module, bn_name, nn.Identity())
    return network
