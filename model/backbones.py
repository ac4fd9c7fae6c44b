"""The two encoders: a ResNet-50 key encoder and a ResNet-18 value encoder with mask inputs.

Both are truncated after layer3 (stride 16). ImageNet weights come from torchvision's weights API and
are only used when asked for (`pretrained=True`); nothing is downloaded otherwise.
"""
import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, Wide_ResNet50_2_Weights, resnet50, wide_resnet50_2
from torchvision.models._api import WeightsEnum
from torchvision.models.segmentation.deeplabv3 import ASPP

from model.modules import FeatureFusionBlock
from util.fileio import InputError


class PretrainedWeightsError(InputError):
    """ImageNet weights were asked for but cannot be had (offline and not cached)."""


def imagenet_state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The torchvision ImageNet state dict, from the torch hub cache or downloaded there."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    try:
        return weights.get_state_dict(progress=True, check_hash=False)
    except Exception as error:  # offline, proxy, corrupt file: all end the same way for the user
        raise PretrainedWeightsError(
            f"cannot load ImageNet weights {weights} ({type(error).__name__}: {error}). Put the file "
            f"{os.path.basename(weights.url)} at {cached} (the cache under TORCH_HOME), "
            f"or pass --no_pretrained to start from random weights."
        ) from None


# Key encoder variants (supplementary E): the paper's ResNet-50 (the released layout), WideResNet-50-2,
# and WideResNet-50-2 with a DeepLabv3 ASPP block on the stride-16 feature.
BACKBONES = ("resnet50", "wide_resnet50", "wide_resnet50_aspp")
ASPP_RATES = (6, 12, 18)  # DeepLabv3's rates at output stride 16


def infer_backbone(state: dict[str, torch.Tensor]) -> str:
    """The key encoder variant a state dict was saved from: its weights record it."""
    if any(k.startswith("key_encoder.aspp.") for k in state):
        return "wide_resnet50_aspp"
    first = state.get("key_encoder.res2.0.conv1.weight")
    return "wide_resnet50" if first is not None and first.shape[0] == 128 else "resnet50"


class KeyEncoder(nn.Module):
    """ResNet-50 (or a variant's) stem and layer1-3; returns the stride-16, 8 and 4 features
    (1024, 512, 256 channels, whatever the variant)."""

    def __init__(self, pretrained: bool = False, backbone: str = "resnet50") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
        if backbone == "resnet50":
            resnet, weights = resnet50(weights=None), ResNet50_Weights.IMAGENET1K_V1
        else:
            resnet, weights = wide_resnet50_2(weights=None), Wide_ResNet50_2_Weights.IMAGENET1K_V1
        if pretrained:
            resnet.load_state_dict(imagenet_state_dict(weights))
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.res2 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.aspp = ASPP(1024, ASPP_RATES, 1024) if backbone == "wide_resnet50_aspp" else None

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(frame))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        if self.aspp is not None:
            f16 = self.aspp(f16)
        return f16, f8, f4


class BasicBlock(nn.Module):
    """ResNet BasicBlock whose convolutions carry biases (the released value-encoder layout)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _resnet18_stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels))


class ValueEncoder(nn.Module):
    """ResNet-18 trunk over [RGB, mask(s)], fused with the frame's key feature into a 512-channel value.

    `mask_channels` is 2 for the multi-object network (this object, sum of the others) and 1 for the
    single-object network of stage 0; `cbam=False` fuses without the attention block (ablation).
    """

    def __init__(self, mask_channels: int = 2, pretrained: bool = False, key_channels: int = 1024,
                 value_dim: int = 512, cbam: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3 + mask_channels, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _resnet18_stage(64, 64, 1)
        self.layer2 = _resnet18_stage(64, 128, 2)
        self.layer3 = _resnet18_stage(128, 256, 2)
        self.fuser = FeatureFusionBlock(256 + key_channels, value_dim, cbam)
        if pretrained:
            self.load_imagenet()

    def load_imagenet(self) -> None:
        """Copy torchvision's ResNet-18 weights; the extra mask input channels start orthogonal."""
        source = imagenet_state_dict(ResNet18_Weights.IMAGENET1K_V1)
        conv1 = source["conv1.weight"]
        extra = torch.empty(conv1.shape[0], self.conv1.in_channels - conv1.shape[1], *conv1.shape[2:])
        nn.init.orthogonal_(extra)
        source["conv1.weight"] = torch.cat([conv1, extra], dim=1)
        own = self.state_dict()
        self.load_state_dict({k: v for k, v in source.items() if k in own}, strict=False)

    def forward(self, frame: torch.Tensor, masks: torch.Tensor, key_f16: torch.Tensor,
                frame_terms: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """frame (B, 3, H, W), masks (B, mask_channels, H, W), key_f16 (B, 1024, H/16, W/16).

        frame_terms: `self.frame_terms(key_f16)` computed once for all objects of a frame (optional).
        """
        x = self.conv1(torch.cat([frame, masks], dim=1))
        x = self.maxpool(self.relu(self.bn1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        if frame_terms is None:
            return self.fuser(x, key_f16)
        return self.fuser.refine(self.fuser.block1.forward_with_frame_terms(x, frame_terms))

    def frame_terms(self, key_f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The key feature's share of the fusion block, the same for every object of the frame."""
        return self.fuser.block1.frame_terms(key_f16, self.layer3[-1].conv2.out_channels)
