"""STM (Oh et al., ICCV 2019) as the STCN authors re-implemented it to evolve it into STCN: the
baseline of the supplementary's Table 1 and of its re-timing (section D).

The query side is STCN's: a ResNet-50 over the frame gives the query key and the query value (STCN's
`key_comp` is STM's query value head). The memory side is what STCN removes: a second ResNet-50 over
the frame, the object's mask and the other objects' mask gives a key and a value *per object*, so a
memory frame costs one ResNet-50 per object and a query frame one affinity per object. The readout is
concatenated with the query value and decoded by the same decoder; objects are soft-aggregated.
"""
from typing import Optional

import torch
import torch.nn as nn

from model.backbones import KeyEncoder
from model.modules import KeyProjection
from model.network import Decoder, KeyFeatures, MemoryNetwork, ObjectBatch, mask_channels


class MemoryEncoder(nn.Module):
    """A ResNet-50 trunk over [RGB, mask(s)], then a key and a value head at stride 16.

    The trunk is the query encoder's (`KeyEncoder`) with a first convolution that also sees the mask
    channels; with ImageNet weights its RGB part keeps them and the mask part starts orthogonal.
    """

    def __init__(self, mask_channels_: int = 2, pretrained: bool = False, key_dim: int = 128,
                 value_dim: int = 512) -> None:
        super().__init__()
        self.trunk = KeyEncoder(pretrained, "resnet50")
        rgb = self.trunk.conv1
        self.trunk.conv1 = nn.Conv2d(3 + mask_channels_, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if pretrained:
            extra = torch.empty(64, mask_channels_, 7, 7)
            nn.init.orthogonal_(extra)
            with torch.no_grad():
                self.trunk.conv1.weight.copy_(torch.cat([rgb.weight, extra], dim=1))
        self.key_proj = KeyProjection(1024, key_dim)
        self.value_proj = nn.Conv2d(1024, value_dim, kernel_size=3, padding=1)

    def forward(self, frame: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frame (N, 3, H, W), masks (N, mask_channels, H, W) -> key (N, Ck, h, w), value (N, Cv, h, w)."""
        f16 = self.trunk(torch.cat([frame, masks], dim=1))[0]
        return self.key_proj(f16), self.value_proj(f16)


class STM(MemoryNetwork):
    """The STM baseline: the same interface, trainer and inference core as STCN.

    similarity: 'dot' (STM's own) or 'l2' (Table 1). key_dim 128 and value_dim 512 as in STM.
    """

    arch = "stm"
    keys_per_object = True
    memory_uses_key_features = False
    default_similarity = "dot"
    widened_key = "memory_encoder.trunk.conv1.weight"

    def __init__(self, single_object: bool = False, pretrained: bool = False, key_dim: int = 128,
                 value_dim: int = 512, similarity: str = "dot", backbone: str = "resnet50") -> None:
        super().__init__()
        self._check_similarity(similarity)
        self.single_object = single_object
        self.similarity = similarity
        self.backbone = backbone
        self.key_encoder = KeyEncoder(pretrained, backbone)  # the query encoder
        self.key_proj = KeyProjection(1024, key_dim)  # query key
        self.key_comp = nn.Conv2d(1024, 512, kernel_size=3, padding=1)  # query value
        self.memory_encoder = MemoryEncoder(1 if single_object else 2, pretrained, key_dim, value_dim)
        self.decoder = Decoder(value_dim + 512)

    def encode_memory(self, frame: torch.Tensor, key_features: Optional[KeyFeatures], masks: torch.Tensor,
                      share_frame_terms: bool = True, present: Optional[torch.Tensor] = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (B, K, Ck, h, w) and values (B, K, Cv, h, w): one ResNet-50 pass per object (the frame
        enters with the mask, so there is no frame term to share); only the `present` objects if given."""
        objects = ObjectBatch(*masks.shape[:2], present)
        key, value = self.memory_encoder(objects.per_object(frame),
                                         objects.select(mask_channels(masks, self.single_object)))
        return objects.scatter(key), objects.scatter(value)
