"""Loading and saving network weights in the released STCN layout: the one function every script uses."""
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn as nn

from util.fileio import atomic_path

WIDENED_KEY = "value_encoder.conv1.weight"
# Keys under which a training checkpoint may hold the network (ours, torchvision-style, generic).
WRAPPER_KEYS = ("network", "model", "state_dict")


class CheckpointError(RuntimeError):
    """A file that is not an STCN checkpoint of the expected layout."""


def read_checkpoint(path: Union[str, Path]) -> dict[str, Any]:
    """torch.load on the CPU with a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(data).__name__}")
    return data


def network_state_dict(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's state dict from a raw state dict or one wrapped in a training checkpoint."""
    for key in WRAPPER_KEYS:
        if isinstance(data.get(key), dict):
            data = data[key]
            break
    return {k.removeprefix("module."): v for k, v in data.items()}


def widen_single_object(state: dict[str, torch.Tensor], target_channels: int,
                        for_training: bool) -> dict[str, torch.Tensor]:
    """Give stage-0 (single-object) weights the multi-object value encoder's extra input channel.

    The added channel is orthogonal when training continues and zero for evaluation, so that an
    evaluated stage-0 model ignores the "other objects" input exactly.
    """
    weight = state.get(WIDENED_KEY)
    if weight is None or weight.ndim != 4 or weight.shape[1] >= target_channels:
        return state
    extra = torch.zeros(weight.shape[0], target_channels - weight.shape[1], *weight.shape[2:], dtype=weight.dtype)
    if for_training:
        nn.init.orthogonal_(extra)
    return {**state, WIDENED_KEY: torch.cat([weight, extra], dim=1)}


def load_weights(model: nn.Module, source: Union[str, Path, dict[str, Any]], for_training: bool = False,
                 name: Optional[str] = None) -> None:
    """Load released (stcn.pth, s0/s01/s03/s012) or own weights into `model`, strictly.

    Anything that does not match fails with one message, naming the file (or `name`), that lists
    missing, unexpected and mis-shaped keys.
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "state dict")
    data = read_checkpoint(source) if isinstance(source, (str, Path)) else source
    state = network_state_dict(data)
    own = model.state_dict()
    if WIDENED_KEY in own:
        state = widen_single_object(state, own[WIDENED_KEY].shape[1], for_training)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and state[k].shape != own[k].shape
    ]
    if missing or unexpected or misshaped:
        raise CheckpointError(
            f"{name}: not an STCN checkpoint of this layout; missing keys: {missing or 'none'}; "
            f"unexpected keys: {unexpected or 'none'}; mismatched shapes: {misshaped or 'none'}"
        )
    model.load_state_dict(state, strict=True)


def save_weights(model: nn.Module, path: Union[str, Path]) -> None:
    """Write the network alone, in the released layout, atomically (never a half-written file)."""
    module = model.module if hasattr(model, "module") else model
    with atomic_path(path) as tmp:
        torch.save(module.state_dict(), tmp)
