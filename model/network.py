"""STCN: Space-Time Correspondence Network (Cheng et al., NeurIPS 2021).

One class serves training and evaluation. A frame is key-encoded once (`encode_key`); each object's
mask is value-encoded with the frame (`encode_value`); a query frame reads the memory through one
affinity shared by all its objects (`read_memory`), is decoded per object (`decode`) and the objects
are soft-aggregated (`segment`).

`MemoryNetwork` holds what STCN shares with its STM baseline (`model/stm.py`): the query side
(`encode_key`), the readout, the decoder, soft aggregation and the training pass. The two differ in how
a memory frame is encoded (`encode_memory`): STCN reuses the query key and encodes one value per
object; STM encodes a key and a value per object, so it needs one affinity per object.

Shapes: B batch, K objects, T memory frames, (h, w) = (H/16, W/16).
"""
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import memory
from model.aggregate import aggregate_logits
from model.backbones import KeyEncoder, ValueEncoder
from model.modules import KeyProjection, ResBlock, UpsampleBlock


class KeyFeatures(NamedTuple):
    """Everything the key encoder gives for a frame: computed once, used by every object."""

    key: torch.Tensor  # B, Ck, h, w: the matching key
    f16_thin: torch.Tensor  # B, 512, h, w: compressed stride-16 feature, concatenated to the readout
    f16: torch.Tensor  # B, 1024, h, w: fused into memory values
    f8: torch.Tensor  # B, 512, H/8, W/8: decoder skip
    f4: torch.Tensor  # B, 256, H/4, W/4: decoder skip


class DecoderFrameTerms(NamedTuple):
    """The parts of decoding that depend on the frame only, computed once for all its objects."""

    compress: tuple[torch.Tensor, torch.Tensor]  # f16_thin's share of the first ResBlock
    skip8: torch.Tensor  # projected stride-8 skip feature
    skip4: torch.Tensor  # projected stride-4 skip feature


class Decoder(nn.Module):
    """Readout (+ compressed key feature) at stride 16 -> one logit per pixel at full resolution."""

    def __init__(self, in_channels: int = 1024) -> None:
        super().__init__()
        self.compress = ResBlock(in_channels, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor) -> torch.Tensor:
        x = self.compress(x)
        x = self.up_16_8(f8, x)
        x = self.up_8_4(f4, x)
        return self._predict(x)

    def frame_terms(self, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor) -> DecoderFrameTerms:
        readout_channels = self.compress.conv1.in_channels - f16_thin.shape[1]
        compress = self.compress.frame_terms(f16_thin, readout_channels)
        return DecoderFrameTerms(compress, self.up_16_8.skip_conv(f8), self.up_8_4.skip_conv(f4))

    def forward_with_frame_terms(self, readout: torch.Tensor, terms: DecoderFrameTerms) -> torch.Tensor:
        """`forward(cat([readout, f16_thin]), f8, f4)` for a batch of objects of one frame."""
        x = self.compress.forward_with_frame_terms(readout, terms.compress)
        x = self.up_16_8.merge(terms.skip8, x)
        x = self.up_8_4.merge(terms.skip4, x)
        return self._predict(x)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


class MemoryNetwork(nn.Module):
    """The space-time memory network shared by STCN and STM; subclasses set up the modules.

    Subclasses own `key_encoder`, `key_proj`, `key_comp` (the query side), `decoder`, and define
    `encode_memory`. `keys_per_object` says whether memory keys carry an object axis (STM) or are
    shared by all objects of a frame (STCN); `memory_uses_key_features` whether `encode_memory` needs
    the frame's `encode_key` output (so that a training pass computes it for frame 0 too).
    """

    arch = ""
    keys_per_object = False
    memory_uses_key_features = True
    default_similarity = "l2"
    widened_key = ""  # the mask-input convolution whose extra channel a stage-0 network lacks

    def _check_similarity(self, similarity: str) -> None:
        if similarity not in memory.SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; expected one of {memory.SIMILARITIES}")

    def as_input(self, frame: torch.Tensor) -> torch.Tensor:
        """`frame` on the network's device, channels-last if the weights are (see `prepare_for_inference`)."""
        weight = next(self.parameters())
        frame = frame.to(weight.device)
        if weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last):
            frame = frame.contiguous(memory_format=torch.channels_last)
        return frame

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        """frame (B, 3, H, W), normalised, H and W multiples of 16."""
        f16, f8, f4 = self.key_encoder(frame)
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_memory(self, frame: torch.Tensor, key_features: Optional[KeyFeatures], masks: torch.Tensor,
                      share_frame_terms: bool = True, present: Optional[torch.Tensor] = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory key and values (B, K, Cv, h, w) of K objects from their masks (B, K, H, W) in one frame.

        The key is (B, Ck, h, w) when shared by the objects, (B, K, Ck, h, w) with `keys_per_object`.
        `key_features` are the frame's `encode_key` output (None where the network does not use them).
        present (B, K) bool: only these objects are encoded; the others' keys and values are 0.
        """
        raise NotImplementedError

    def read_memory(self, query_key: torch.Tensor, memory_key: torch.Tensor, memory_value: torch.Tensor,
                    top_k: Optional[int] = None, query_chunk: Optional[int] = None,
                    kernel_sigma: Optional[float] = None) -> torch.Tensor:
        """Readout (B, K, Cv, h, w) for every object.

        query_key (B, Ck, h, w); memory_value (B, K, Cv, T, h, w) or (B, K, Cv, N); memory_key
        (B, Ck, T, h, w) or (B, Ck, N), one affinity for all objects, or with `keys_per_object`
        (B, K, Ck, T, h, w) or (B, K, Ck, N), one affinity per object. With top_k, only the k best memory
        positions per query position are gathered, in chunks of `query_chunk` positions, so memory use
        does not grow with memory size x frame size. `kernel_sigma` turns on kernelized reading (KMN).
        """
        batch, objects, value_dim = memory_value.shape[:3]
        height, width = query_key.shape[-2:]
        queries = query_key.flatten(start_dim=2)  # B, Ck, P
        if self.keys_per_object:  # objects become batch entries, each with its own keys
            keys = memory_key.flatten(start_dim=3).flatten(end_dim=1)  # B*K, Ck, N
            values = memory_value.flatten(start_dim=3).flatten(end_dim=1)  # B*K, Cv, N
            queries = queries.repeat_interleave(objects, dim=0)  # B*K, Ck, P
        else:
            keys = memory_key.flatten(start_dim=2)  # B, Ck, N
            values = memory_value.reshape(batch, objects * value_dim, -1)  # B, K*Cv, N
        readout = self._read(queries, keys, values, width, top_k, query_chunk, kernel_sigma)
        return readout.view(batch, objects, value_dim, height, width)

    def _read(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, width: int,
              top_k: Optional[int], query_chunk: Optional[int], kernel_sigma: Optional[float]) -> torch.Tensor:
        """(B', C, P) readout of values (B', C, N) for queries (B', Ck, P) over keys (B', Ck, N)."""
        chunk = query_chunk or queries.shape[2]
        starts = range(0, queries.shape[2], chunk)

        def chunk_similarity(start: int) -> torch.Tensor:
            return memory.similarity(keys, queries[:, :, start:start + chunk], self.similarity)

        best_query = None
        if kernel_sigma:  # a first pass finds each memory position's best query position
            best_query = memory.best_query_positions(chunk_similarity(start) for start in starts)
        outputs = []
        for start in starts:
            sim = chunk_similarity(start)
            if best_query is not None:
                sim = memory.kernelize(sim, best_query, start, width, kernel_sigma)
            if top_k:
                weights, indices = memory.topk_softmax(sim, top_k)
                outputs.append(memory.sparse_readout(weights, indices, values))
            else:
                outputs.append(memory.readout(torch.softmax(sim, dim=2), values))
        return torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]

    def decode(self, readout: torch.Tensor, key_features: KeyFeatures, share_frame_terms: bool = True,
               present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-object logits (B, K, H, W) from the readout (B, K, Cv, h, w) and the frame's features.

        share_frame_terms: the frame-only convolutions run once per frame, not once per object (equal up
        to float rounding); False is the literal per-object computation, kept for comparisons.
        present (B, K) bool: only these objects are decoded; the others' logits are 0 (see `ObjectBatch`).
        """
        objects = ObjectBatch(*readout.shape[:2], present)
        readout = objects.select(readout.flatten(end_dim=1))  # M, Cv, h, w
        if share_frame_terms:
            terms = self.decoder.frame_terms(key_features.f16_thin, key_features.f8, key_features.f4)
            logits = self.decoder.forward_with_frame_terms(readout, objects.frame_terms(terms))
        else:
            x = torch.cat([readout, objects.per_object(key_features.f16_thin)], dim=1)
            logits = self.decoder(x, objects.per_object(key_features.f8), objects.per_object(key_features.f4))
        return objects.scatter(logits[:, 0])

    def segment(self, key_features: KeyFeatures, memory_key: torch.Tensor, memory_value: torch.Tensor,
                selector: Optional[torch.Tensor] = None, top_k: Optional[int] = None,
                query_chunk: Optional[int] = None, share_frame_terms: bool = True,
                present: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregated logits (B, K+1, H, W) and object probabilities (B, K, H, W) of a query frame.

        selector (B, K) zeroes objects that a training sample does not have; share_frame_terms and
        present: see `decode`.
        """
        readout = self.read_memory(key_features.key, memory_key, memory_value, top_k, query_chunk)
        prob = torch.sigmoid(self.decode(readout, key_features, share_frame_terms, present))
        if selector is not None:
            prob = prob * selector[:, :, None, None]
        logits = aggregate_logits(prob, dim=1)
        return logits, torch.softmax(logits, dim=1)[:, 1:]

    def forward(self, frames: torch.Tensor, first_masks: torch.Tensor, selector: Optional[torch.Tensor] = None,
                literal: bool = False) -> dict[str, torch.Tensor]:
        """Training pass: frame t is segmented from the memory of frames 0..t-1 (the paper uses T=3).

        frames (B, T, 3, H, W); first_masks (B, K, H, W) ground truth of frame 0. Returns
        `logits_t` (B, K+1, H, W) and `mask_t` (B, K, H, W) for t = 1..T-1; later frames' memory is
        encoded from the predicted probabilities. The frame-only convolutions run once per frame, and the
        objects a sample does not have (selector 0) are neither encoded nor decoded (their probabilities
        are zeroed anyway); `literal` computes everything for every object instead, as the authors' code
        does (same outputs up to float rounding; for comparisons).
        """
        num_frames = frames.shape[1]
        first = 0 if self.memory_uses_key_features else 1  # STM's frame 0 is only a memory frame
        features = {t: self.encode_key(frames[:, t]) for t in range(first, num_frames)}
        share_frame_terms = not literal
        present = selector > 0 if selector is not None and not literal else None
        key, value = self.encode_memory(frames[:, 0], features.get(0), first_masks, share_frame_terms, present)
        keys, values = [key], [value]
        out = {}
        for t in range(1, num_frames):
            memory_key = torch.stack(keys, dim=-3)  # B, (K,) Ck, t, h, w
            memory_value = torch.stack(values, dim=-3)  # B, K, Cv, t, h, w
            logits, prob = self.segment(features[t], memory_key, memory_value, selector,
                                        share_frame_terms=share_frame_terms, present=present)
            out[f"logits_{t}"], out[f"mask_{t}"] = logits, prob
            if t < num_frames - 1:
                key, value = self.encode_memory(frames[:, t], features[t], prob, share_frame_terms, present)
                keys.append(key)
                values.append(value)
        return out


class STCN(MemoryNetwork):
    """The STCN network in the released checkpoint layout.

    single_object: the stage-0 network, whose value encoder sees no "other objects" channel.
    pretrained: initialise both backbones from torchvision's ImageNet weights (never downloads otherwise).
    similarity: 'l2' (the paper) or 'dot' (the STM ablation of Table 1).
    backbone: the key encoder, 'resnet50' (the paper) or a variant of supplementary E (see BACKBONES).
    cbam: False for the authors' ablation that fuses value and key features without CBAM.
    """

    arch = "stcn"
    widened_key = "value_encoder.conv1.weight"

    def __init__(self, single_object: bool = False, pretrained: bool = False, key_dim: int = 64,
                 value_dim: int = 512, similarity: str = "l2", backbone: str = "resnet50",
                 cbam: bool = True) -> None:
        super().__init__()
        self._check_similarity(similarity)
        self.single_object = single_object
        self.similarity = similarity
        self.backbone = backbone
        self.cbam = cbam
        self.key_encoder = KeyEncoder(pretrained, backbone)
        self.value_encoder = ValueEncoder(1 if single_object else 2, pretrained, 1024, value_dim, cbam)
        self.key_proj = KeyProjection(1024, key_dim)
        self.key_comp = nn.Conv2d(1024, 512, kernel_size=3, padding=1)
        self.decoder = Decoder(value_dim + 512)

    def encode_value(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor,
                     frame_terms: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                     present: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Memory values (B, K, Cv, h, w) of K objects from their masks (B, K, H, W) in one frame.

        The multi-object network also sees, for each object, the sum of the other objects' masks.
        With `frame_terms` (from `value_encoder.frame_terms(key_f16)`) the key feature's part of the
        fusion is shared by the objects instead of recomputed for each. present: see `encode_memory`.
        """
        objects = ObjectBatch(*masks.shape[:2], present)
        value = self.value_encoder(
            objects.per_object(frame),
            objects.select(mask_channels(masks, self.single_object)),
            None if frame_terms is not None else objects.per_object(key_f16),
            None if frame_terms is None else objects.frame_terms(frame_terms),
        )
        return objects.scatter(value)

    def encode_memory(self, frame: torch.Tensor, key_features: Optional[KeyFeatures], masks: torch.Tensor,
                      share_frame_terms: bool = True, present: Optional[torch.Tensor] = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame's key (B, Ck, h, w), shared by its objects, and their values (B, K, Cv, h, w).

        share_frame_terms: the key feature's part of the fusion is computed once per frame (see `decode`).
        present (B, K) bool: only these objects are encoded; the others' values are 0.
        """
        terms = self.value_encoder.frame_terms(key_features.f16) if share_frame_terms else None
        return key_features.key, self.encode_value(frame, key_features.f16, masks, terms, present)


class ObjectBatch:
    """The (frame, object) pairs a pass computes: all B*K of them, or only those `present` (B, K) bool.

    A training sample may lack its second object; its selector zeroes that object's probabilities, so
    encoding and decoding it would be wasted work. Tensors per frame (B, ...) are spread over the
    computed objects (M, ...), and results (M, ...) are put back as (B, K, ...) with zeros for the rest.
    """

    def __init__(self, batch: int, objects: int, present: Optional[torch.Tensor] = None) -> None:
        self.batch, self.objects = batch, objects
        self.chosen = self.frame_of = None  # with some objects absent: indices into B*K, and their frames
        if present is not None and not bool(present.all()):
            self.chosen = present.flatten().nonzero().squeeze(1)
            self.frame_of = torch.div(self.chosen, objects, rounding_mode="floor")

    def per_object(self, per_frame: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (M, ...): each computed object's frame (a view when B is 1 and all are computed)."""
        if self.chosen is None:
            return per_object(per_frame, self.objects)
        return per_frame.index_select(0, self.frame_of)

    def select(self, flat: torch.Tensor) -> torch.Tensor:
        """(B*K, ...) -> (M, ...)."""
        return flat if self.chosen is None else flat.index_select(0, self.chosen)

    def frame_terms(self, terms):
        """Frame terms (tensors per frame, possibly nested in tuples) for the computed objects: as they are
        when all are computed (they broadcast over each frame's objects), else one per computed object."""
        if self.chosen is None:
            return terms
        if torch.is_tensor(terms):
            return terms.index_select(0, self.frame_of)
        parts = [self.frame_terms(part) for part in terms]
        return type(terms)(*parts) if hasattr(terms, "_fields") else tuple(parts)

    def scatter(self, computed: torch.Tensor) -> torch.Tensor:
        """(M, ...) -> (B, K, ...), zeros for the objects not computed."""
        if self.chosen is not None:
            full = computed.new_zeros(self.batch * self.objects, *computed.shape[1:])
            computed = full.index_copy(0, self.chosen, computed)
        return computed.view(self.batch, self.objects, *computed.shape[1:])


def per_object(frame: torch.Tensor, objects: int) -> torch.Tensor:
    """The frames (B, 3, H, W) repeated for each of K objects: (B*K, 3, H, W), a view when B is 1."""
    return frame.expand(objects, -1, -1, -1) if frame.shape[0] == 1 else frame.repeat_interleave(objects, dim=0)


def mask_channels(masks: torch.Tensor, single_object: bool) -> torch.Tensor:
    """The mask input of a memory encoder (B*K, 1 or 2, H, W) from K objects' masks (B, K, H, W): each
    object's own mask and, for the multi-object network, the sum of the other objects' masks."""
    batch, objects = masks.shape[:2]
    own = masks.reshape(batch * objects, 1, *masks.shape[2:])
    if single_object:
        if objects != 1:
            raise ValueError(f"the single-object network encodes one mask at a time, got {objects}")
        return own
    others = masks.sum(dim=1, keepdim=True) - masks  # B, K, H, W
    return torch.cat([own, others.reshape_as(own)], dim=1)
