"""Loading and saving network weights in the released STCN layout: the one function every script uses.

What the weights cannot show (above all the similarity they were trained with) goes to a network card,
a JSON sidecar `<weights>.json` beside them, so the released layout stays exactly the authors'.
"""
import copy
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn as nn

from model.backbones import infer_backbone
from model.fold import fold_batchnorm
from model.memory import SIMILARITIES
from model.network import STCN, MemoryNetwork
from model.stm import STM
from util.fileio import InputError, atomic_path

ARCHS = {"stcn": STCN, "stm": STM}
# Keys under which a training checkpoint may hold the network (ours, torchvision-style, generic).
WRAPPER_KEYS = ("network", "model", "state_dict")


class CheckpointError(InputError):
    """A file that is not an STCN checkpoint of the expected layout."""


def read_checkpoint(path: Union[str, Path]) -> dict[str, Any]:
    """torch.load on the CPU with a clear error for a missing or unreadable file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file (give the .pth inside it)")
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


@dataclass(frozen=True)
class NetworkSpec:
    """What builds a network: architecture, similarity, key encoder, CBAM in the fusion (STCN only)."""

    arch: str = "stcn"
    similarity: str = "l2"
    backbone: str = "resnet50"
    cbam: bool = True

    def build(self, single_object: bool = False, pretrained: bool = False) -> MemoryNetwork:
        if self.arch == "stm":
            return STM(single_object, pretrained, similarity=self.similarity, backbone=self.backbone)
        return STCN(single_object, pretrained, similarity=self.similarity, backbone=self.backbone, cbam=self.cbam)


def spec_of(network: nn.Module) -> NetworkSpec:
    network = network.module if hasattr(network, "module") else network
    return NetworkSpec(network.arch, network.similarity, network.backbone, getattr(network, "cbam", True))


def structure_from_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """What the weights themselves show: architecture, key encoder variant, CBAM or not."""
    arch = "stm" if any(k.startswith("memory_encoder.") for k in state) else "stcn"
    cbam = arch == "stm" or any(k.startswith("value_encoder.fuser.attention.") for k in state)
    return {"arch": arch, "backbone": infer_backbone(state), "cbam": cbam}


def card_path(weights: Union[str, Path]) -> Path:
    """`<weights>.json`: the network card beside a weights file."""
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def read_card(weights: Union[str, Path], data: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
    """The recorded settings of some weights: their card, else the config inside a full training
    checkpoint (`data`), else None (e.g. the released stcn.pth)."""
    path = card_path(weights)
    if path.is_file():
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{path}: unreadable network card ({error})") from None
        if not isinstance(card, dict) or card.get("similarity") not in SIMILARITIES:
            raise CheckpointError(f"{path}: not a network card (needs a similarity of {SIMILARITIES})")
        return card
    if data is not None and isinstance(data.get("config"), dict) and "similarity" in data["config"]:
        return data["config"]
    return None


def write_card(network: nn.Module, weights: Union[str, Path], extra: Optional[dict[str, Any]] = None) -> None:
    """Write `<weights>.json` with the network's spec (and `extra`, e.g. the training run), atomically."""
    with atomic_path(card_path(weights)) as tmp:
        tmp.write_text(json.dumps({**asdict(spec_of(network)), **(extra or {})}, indent=2))


def similarity_for(arch: str, given: Optional[str] = None, recorded: Optional[str] = None) -> str:
    """The memory similarity a network uses: the flag, else the one recorded with its weights, else the
    architecture's (l2 for STCN, as the released stcn.pth; dot for STM). The one place this is decided."""
    return given or recorded or ARCHS[arch].default_similarity


def resolve_spec(weights: Union[str, Path], data: dict[str, Any], similarity: Optional[str] = None) -> NetworkSpec:
    """The spec to evaluate `weights` with: structure from the weights, similarity from the card.

    A `similarity` flag that contradicts the card is an error; without card or flag, the architecture's
    default similarity is used (l2 for STCN, as the released stcn.pth).
    """
    structure = structure_from_state(network_state_dict(data))
    card = read_card(weights, data)
    recorded = card.get("similarity") if card else None
    if recorded and similarity and similarity != recorded:
        source = card_path(weights) if card_path(weights).is_file() else weights
        raise CheckpointError(f"{weights}: trained with --similarity {recorded} (recorded in {source}); "
                              f"--similarity {similarity} contradicts it (drop the flag)")
    chosen = similarity_for(structure["arch"], similarity, recorded)
    return NetworkSpec(structure["arch"], chosen, structure["backbone"], structure["cbam"])


def widen_single_object(state: dict[str, torch.Tensor], key: str, target_channels: int,
                        for_training: bool) -> dict[str, torch.Tensor]:
    """Give stage-0 (single-object) weights the multi-object value encoder's extra input channel.

    The added channel is orthogonal when training continues and zero for evaluation, so that an
    evaluated stage-0 model ignores the "other objects" input exactly.
    """
    weight = state.get(key)
    if weight is None or weight.ndim != 4 or weight.shape[1] >= target_channels:
        return state
    extra = torch.zeros(weight.shape[0], target_channels - weight.shape[1], *weight.shape[2:], dtype=weight.dtype)
    if for_training:
        nn.init.orthogonal_(extra)
    return {**state, key: torch.cat([weight, extra], dim=1)}


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
    widened = getattr(model, "widened_key", "")
    if widened in own:
        state = widen_single_object(state, widened, own[widened].shape[1], for_training)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and state[k].shape != own[k].shape
    ]
    if missing or unexpected or misshaped:
        raise CheckpointError(
            f"{name}: not a checkpoint of this network ({describe(model)}); missing keys: {missing or 'none'}; "
            f"unexpected keys: {unexpected or 'none'}; mismatched shapes: {misshaped or 'none'}"
        )
    model.load_state_dict(state, strict=True)


def describe(model: nn.Module) -> str:
    """One line for logs and errors: 'STCN, l2 similarity, resnet50 key encoder[, no CBAM]'."""
    spec = spec_of(model)
    return (f"{spec.arch.upper()}, {spec.similarity} similarity, {spec.backbone} key encoder"
            + ("" if spec.cbam else ", no CBAM"))


def write_checkpoint(state: dict[str, Any], path: Union[str, Path]) -> None:
    """torch.save to a temporary sibling renamed onto `path`; a failed write (a full disk, most often)
    leaves nothing behind and raises a CheckpointError that names the file and the free space."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as error:
        path.parent.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(path.parent).free / 2**30
        raise CheckpointError(f"{path}: could not write the checkpoint ({free_gb:.1f} GiB free on its disk; "
                              f"{type(error).__name__}: {error})") from None


def save_weights(model: nn.Module, path: Union[str, Path], card: Optional[dict[str, Any]] = None) -> None:
    """Write the network alone, in the released layout, and its card `<path>.json`, atomically (never a
    half-written file); `card` adds to what the card records."""
    module = model.module if hasattr(model, "module") else model
    write_checkpoint(module.state_dict(), path)
    write_card(module, path, card)


def prepare_for_inference(network: MemoryNetwork, device: torch.device) -> MemoryNetwork:
    """An evaluation copy of a network (the given one is left as it is): eval mode, BatchNorm folded into
    the convolutions, weights channels-last (faster convolutions here; docs/speed.md)."""
    return fold_batchnorm(copy.deepcopy(network).eval()).to(device, memory_format=torch.channels_last)


def load_network(weights: Path, device: torch.device, similarity: Optional[str] = None) -> MemoryNetwork:
    """The evaluation network from released or own weights (stage-0 weights widened with zeros; STCN or
    STM, key encoder variant and CBAM read from the weights, the similarity from their card unless given
    and consistent), prepared for inference."""
    data = read_checkpoint(weights)
    network = resolve_spec(weights, data, similarity).build()
    load_weights(network, data, for_training=False, name=str(weights))
    return prepare_for_inference(network, device)
