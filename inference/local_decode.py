"""Object-local decoding: each object is decoded only inside a box around where it can be.

At 480p most of a frame's work is the decoder, run once per object at strides 8 and 4, while an object
usually covers a small part of the frame and far from it the decoder is certain of the background. So an
object is decoded inside the box of the stride-16 cells where it may be (its mask read from memory or its
mask in the previous frame above PRESENCE), grown by a margin; elsewhere its logit is BACKGROUND_LOGIT.
Each box is decoded with HALO cells of context around it, so that inside the box the logits are the
whole-frame decoder's; the approximation is only outside. That holds only where the whole-frame decoder
would be certain of the background, so every AUDIT_EVERY-th frame is decoded whole and checked: an object
that reaches BORDER_PROB outside its box there (it extends beyond it, or the network is unsure
everywhere, as random weights are) is decoded over the whole frame until the next audit. When the boxes
would cost more than decoding the whole frame, the whole frame is decoded. It is off unless asked for
(`--local_decode`): the approximation outside the boxes enters memory and, over 100 frames, moved J&F by
more than 0.001 (docs/speed.md); whole frames are the paper's computation.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F

from model.network import KeyFeatures, MemoryNetwork

STRIDE = 16  # the memory's cells, in pixels
MARGIN = 2  # cells added around an object's cells (see docs/speed.md, object-local decoding)
# Cells of context decoded around a box and then dropped. A crop's edge (zero padding, clamped bilinear
# upsampling) reaches 76 pixels into the decoder's output (two 3x3 convolutions at stride 16, then at 8,
# then at 4 with the prediction's, and three upsamplings), so with 5 cells an object's logits inside its
# box are those of the whole-frame decoder.
HALO = 5
PRESENCE = 0.1  # an object may be in a cell where its read-out or previous mask reaches this
BACKGROUND_LOGIT = -20.0  # sigmoid 2e-9: where the decoder, far from its object, is as certain (see docs/speed.md)
# An object above this outside its box in an audit is decoded whole until the next one: there it would take
# pixels from the background (0.1 failed a trained network on faint spots that never change a label)
BORDER_PROB = 0.5
AUDIT_EVERY = 10  # frames between whole-frame audits (the first frame after an annotation is one)
# FLOPs of the decoder's frame-only terms relative to one object's own share, per stride-4 pixel, from the
# channel counts: (2*512*512/16 + 512*512/4 + 256*256) / (3*512*512/16 + (2*512*256 + 256*256)/4 + 2*256*256)
FRAME_TERMS_COST = 0.625

Box = tuple[int, int, int, int]  # top, bottom, left, right in cells; bottom and right exclusive


def mask_cells(prob: torch.Tensor) -> torch.Tensor:
    """Per stride-16 cell, the largest probability in it: (K, H, W) -> (K, H/16, W/16)."""
    return F.max_pool2d(prob.float(), STRIDE)


def grow(box: Box, cells: int, height: int, width: int) -> Box:
    """The box grown by `cells` on every side, clipped to a frame of height x width cells."""
    top, bottom, left, right = box
    return max(0, top - cells), min(height, bottom + cells), max(0, left - cells), min(width, right + cells)


def object_boxes(presence: torch.Tensor, margin: int) -> list[Optional[Box]]:
    """For presence (K, h, w) (bool), each object's bounding box of cells grown by `margin` cells and
    clipped to the frame; None for an object that is nowhere."""
    height, width = presence.shape[-2:]
    boxes = []
    for cells in presence:
        rows, cols = cells.any(dim=1).nonzero(), cells.any(dim=0).nonzero()
        if len(rows) == 0:
            boxes.append(None)
            continue
        boxes.append(grow((int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1), margin, height, width))
    return boxes


def worth_it(boxes: list[Optional[Box]], height: int, width: int) -> bool:
    """Whether decoding the boxes with their halo costs fewer FLOPs than decoding the whole frame (height x
    width cells) for every object; at small frames the halo alone covers most of the frame."""
    decoded = [grow(box, HALO, height, width) for box in boxes if box is not None]
    box_cells = sum((bottom - top) * (right - left) for top, bottom, left, right in decoded)
    return box_cells * (1 + FRAME_TERMS_COST) < height * width * (len(boxes) + FRAME_TERMS_COST)


def crop_features(features: KeyFeatures, box: Box) -> KeyFeatures:
    """The key features of the frame inside a box of stride-16 cells (each at its own stride)."""
    top, bottom, left, right = box

    def crop(feature: torch.Tensor) -> torch.Tensor:
        scale = feature.shape[-1] // features.key.shape[-1]
        return feature[..., top * scale:bottom * scale, left * scale:right * scale]

    return KeyFeatures(*(crop(feature) for feature in features))


def escapes_box(logits: torch.Tensor, boxes: list[Optional[Box]]) -> list[bool]:
    """For whole-frame logits (K, H, W), whether each object reaches BORDER_PROB outside its box."""
    limit = math.log(BORDER_PROB / (1 - BORDER_PROB))
    escapes = []
    for object_logits, box in zip(logits, boxes):
        outside = object_logits > limit
        if box is not None:
            top, bottom, left, right = box
            outside[top * STRIDE:bottom * STRIDE, left * STRIDE:right * STRIDE] = False
        escapes.append(bool(outside.any()))
    return escapes


def decode_in_boxes(network: MemoryNetwork, readout: torch.Tensor, features: KeyFeatures,
                    boxes: list[Optional[Box]]) -> torch.Tensor:
    """Logits (1, K, H, W) of K objects from their readout (1, K, Cv, h, w), each decoded in its box grown
    by the halo and kept in its box only (where it equals the whole-frame decoder's)."""
    height, width = readout.shape[-2:]
    logits = readout.new_full((1, readout.shape[1], height * STRIDE, width * STRIDE), BACKGROUND_LOGIT)
    for index, box in enumerate(boxes):
        if box is None:
            continue
        top, bottom, left, right = box
        outer = grow(box, HALO, height, width)
        decoded = network.decode(readout[:, index:index + 1, :, outer[0]:outer[1], outer[2]:outer[3]],
                                 crop_features(features, outer))
        rows = slice((top - outer[0]) * STRIDE, (bottom - outer[0]) * STRIDE)
        cols = slice((left - outer[2]) * STRIDE, (right - outer[2]) * STRIDE)
        kept = decoded[..., rows, cols]
        logits[:, index:index + 1, top * STRIDE:bottom * STRIDE, left * STRIDE:right * STRIDE] = kept
    return logits


class LocalDecoder:
    """Object-local decoding for one video: owns the previous frame's mask cells, the frames since the last
    audit and which objects escaped their box there. The core calls `decode` once per frame, `observe` with
    the frame's final probabilities, `with_mask_cells` on memory values and `audit_next` when objects join."""

    def __init__(self, network: MemoryNetwork, margin: int = MARGIN) -> None:
        self.network = network
        self.margin = margin
        self.previous_cells: Optional[torch.Tensor] = None  # K, h, w: the last frame's mask cells
        self.frames_since_audit = 0
        self.escaping: list[bool] = []  # per object: reached beyond its box in the last audit
        self.whole_frame_decodes = 0  # objects decoded over the whole frame (audits included)

    def audit_next(self) -> None:
        """Decode the next frame whole and check every object (new objects have just been added)."""
        self.frames_since_audit = 0

    def observe(self, object_prob: torch.Tensor) -> None:
        """Keep this frame's mask cells (K, H, W probabilities): the next frame's boxes start from them."""
        self.previous_cells = mask_cells(object_prob)

    def with_mask_cells(self, values: torch.Tensor) -> torch.Tensor:
        """Memory values (1, K, Cv, h, w) with each object's mask cells of this frame as one more channel,
        read out with the same weights as the values."""
        return torch.cat([values, self.previous_cells[None, :, None].to(values.dtype)], dim=2)

    def decode(self, readout: torch.Tensor, features: KeyFeatures) -> torch.Tensor:
        """Logits (1, K, H, W) from the readout (1, K, Cv+1, h, w) whose last channel is the read-out mask
        cells: in boxes, or over whole frames at audits, for escaping objects and where boxes cannot pay."""
        readout, read_cells = readout[:, :, :-1], readout[0, :, -1]  # K, h, w
        presence = (read_cells > PRESENCE) | (self.previous_cells > PRESENCE)
        boxes = object_boxes(presence, self.margin)
        height, width = read_cells.shape[1:]
        whole_frame = (0, height, 0, width)
        audit = self.frames_since_audit % AUDIT_EVERY == 0
        self.frames_since_audit += 1
        if not audit:  # the last audit set `escaping` for every object
            boxes = [whole_frame if escaping else box for box, escaping in zip(boxes, self.escaping, strict=True)]
        if not audit and worth_it(boxes, height, width):
            self.whole_frame_decodes += sum(box == whole_frame for box in boxes)
            return decode_in_boxes(self.network, readout, features, boxes)
        logits = self.network.decode(readout, features)
        self.whole_frame_decodes += len(boxes)
        if audit:
            self.escaping = escapes_box(logits[0], boxes)
        return logits
