"""Building blocks of STCN: ResBlock, CBAM, feature fusion, key projection, upsampling.

Parameter names follow the released checkpoint layout, so that the authors' weights load as they are.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def add_frame_term(per_object: torch.Tensor, per_frame: torch.Tensor) -> torch.Tensor:
    """per_object (B*K, C, H, W) + per_frame (B, C, H, W): each frame's term added to its K objects."""
    frames = per_frame.shape[0]
    if frames == 1:
        return per_object + per_frame
    return (per_object.unflatten(0, (frames, -1)) + per_frame.unsqueeze(1)).flatten(end_dim=1)


class ResBlock(nn.Module):
    """BasicBlock-style residual block without BatchNorm (pre-activation ReLU, two 3x3 convolutions)."""

    def __init__(self, in_channels: int, out_channels: Optional[int] = None) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.downsample = (
            None if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv2(F.relu(self.conv1(F.relu(x))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + residual

    def frame_terms(self, frame_part: torch.Tensor, first: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Contributions (biases included) of input channels [first:] to conv1 and the shortcut.

        When those channels hold a per-frame feature concatenated after per-object channels, they are
        computed once per frame instead of once per object (a convolution is linear in its inputs).
        """
        conv1 = F.conv2d(F.relu(frame_part), self.conv1.weight[:, first:], self.conv1.bias, padding=1)
        shortcut = F.conv2d(frame_part, self.downsample.weight[:, first:], self.downsample.bias, padding=1)
        return conv1, shortcut

    def forward_with_frame_terms(self, object_part: torch.Tensor,
                                 terms: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """`forward(cat([object_part, frame_part]))` given `frame_terms(frame_part)`: object_part
        (B*K, C, H, W) holds K objects of each of the B frames whose terms are (B, C', H, W)."""
        first = object_part.shape[1]
        conv1_frame, shortcut_frame = terms
        conv1 = add_frame_term(F.conv2d(F.relu(object_part), self.conv1.weight[:, :first], padding=1), conv1_frame)
        shortcut = add_frame_term(F.conv2d(object_part, self.downsample.weight[:, :first], padding=1), shortcut_frame)
        return shortcut + self.conv2(F.relu(conv1))


class ChannelGate(nn.Module):
    """CBAM channel attention: a shared MLP over average- and max-pooled channel descriptors."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        # Flatten first so that the Linear layers sit at indices 1 and 3 (released layout).
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        max_ = self.mlp(F.adaptive_max_pool2d(x, 1))
        scale = torch.sigmoid(avg + max_)[:, :, None, None]
        return x * scale


class SpatialConv(nn.Module):
    """A bare convolution wrapped so that its parameters are named `spatial.conv.*` (released layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialGate(nn.Module):
    """CBAM spatial attention from the channel-wise max and mean maps."""

    def __init__(self) -> None:
        super().__init__()
        self.spatial = SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module with its default setting (channel then spatial gate)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuses value-encoder and key-encoder stride-16 features into the memory value (seed F.2).

    cbam=False is the authors' ablation without the attention block (no `attention.*` weights).
    """

    def __init__(self, in_channels: int, out_channels: int, cbam: bool = True) -> None:
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels) if cbam else None
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, value_f16: torch.Tensor, key_f16: torch.Tensor) -> torch.Tensor:
        return self.refine(self.block1(torch.cat([value_f16, key_f16], dim=1)))

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        """Attention (if any) and the second block, applied to the output of block1."""
        return self.block2(x if self.attention is None else x + self.attention(x))


class KeyProjection(nn.Module):
    """3x3 convolution from the key encoder's 1024 channels to the 64-channel key space."""

    def __init__(self, in_channels: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_dim, kernel_size=3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight)
        nn.init.zeros_(self.key_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key_proj(x)


class UpsampleBlock(nn.Module):
    """Decoder stage: project the skip feature, add the x2-upsampled coarser feature, refine."""

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, kernel_size=3, padding=1)
        self.out_conv = ResBlock(up_channels, out_channels)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.merge(self.skip_conv(skip), coarse)

    def merge(self, projected_skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """Add the upsampled coarse feature (B*K objects) to an already projected skip feature (B frames,
        or B*K when it was projected per object)."""
        up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(add_frame_term(up, projected_skip))
