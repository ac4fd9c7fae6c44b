"""Object-local decoding: each object is decoded only inside a box around where it can be.

At 480p most of a frame's work is the decoder, run once per object at strides 8 and 4, while an object
usually covers a small part of the frame and far from it the decoder is certain of the background. So
an object is decoded inside the box of the stride-16 cells where it may be (its mask read from memory
or its mask in the previous frame above PRESENCE), grown by a margin; elsewhere its logit is
BACKGROUND_LOGIT. That holds only where the decoder is certain of the background at the box's edge, so an
object whose decoded box reaches BORDER_PROB in its outer band of cells (it extends beyond the box, or the
network is unsure everywhere, as random weights are) is decoded over the whole frame instead. When the
boxes would cost more than decoding the whole frame, the whole frame is decoded. `--exact_decode` always
decodes whole frames (the paper's computation).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F

from model.network import KeyFeatures, MemoryNetwork

STRIDE = 16  # the memory's cells, in pixels
MARGIN = 2  # cells added around an object's cells (chosen from measurements: README)
PRESENCE = 0.1  # an object may be in a cell where its read-out or previous mask reaches this
BACKGROUND_LOGIT = -20.0  # sigmoid 2e-9: where the decoder, far from its object, is as certain (see README)
BORDER_PROB = 0.1  # a box whose outer band reaches this probability is decoded over the whole frame instead
# FLOPs of the decoder's frame-only terms relative to one object's own share, per stride-4 pixel, from the
# channel counts: (2*512*512/16 + 512*512/4 + 256*256) / (3*512*512/16 + (2*512*256 + 256*256)/4 + 2*256*256)
FRAME_TERMS_COST = 0.625

Box = tuple[int, int, int, int]  # top, bottom, left, right in cells; bottom and right exclusive


def mask_cells(prob: torch.Tensor) -> torch.Tensor:
    """Per stride-16 cell, the largest probability in it: (K, H, W) -> (K, H/16, W/16)."""
    return F.max_pool2d(prob.float(), STRIDE)


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
        boxes.append((max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin),
                      max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)))
    return boxes


def worth_it(boxes: list[Optional[Box]], cells: int) -> bool:
    """Whether decoding the boxes costs fewer FLOPs than decoding the whole frame for every object."""
    box_cells = sum((bottom - top) * (right - left) for top, bottom, left, right in filter(None, boxes))
    return box_cells * (1 + FRAME_TERMS_COST) < cells * (len(boxes) + FRAME_TERMS_COST)


def crop_features(features: KeyFeatures, box: Box) -> KeyFeatures:
    """The key features of the frame inside a box of stride-16 cells (each at its own stride)."""
    top, bottom, left, right = box

    def crop(feature: torch.Tensor) -> torch.Tensor:
        scale = feature.shape[-1] // features.key.shape[-1]
        return feature[..., top * scale:bottom * scale, left * scale:right * scale]

    return KeyFeatures(*(crop(feature) for feature in features))


def reaches_border(box_logits: torch.Tensor, box: Box, cells: tuple[int, int]) -> bool:
    """Whether a box's decoded logits (H_box, W_box) reach BORDER_PROB in its outer band of cells, on the
    sides that are not the frame's edge (`cells`: the frame's h, w)."""
    top, bottom, left, right = box
    bands = [box_logits[:STRIDE]] if top > 0 else []
    bands += [box_logits[-STRIDE:]] if bottom < cells[0] else []
    bands += [box_logits[:, :STRIDE]] if left > 0 else []
    bands += [box_logits[:, -STRIDE:]] if right < cells[1] else []
    limit = math.log(BORDER_PROB / (1 - BORDER_PROB))
    return any(bool((band > limit).any()) for band in bands)


def decode_in_boxes(network: MemoryNetwork, readout: torch.Tensor, features: KeyFeatures,
                    boxes: list[Optional[Box]]) -> tuple[torch.Tensor, int]:
    """Logits (1, K, H, W) of K objects from their readout (1, K, Cv, h, w), each decoded in its box only
    unless it reaches the box's border, and how many were decoded over the whole frame for that reason."""
    height, width = readout.shape[-2:]
    logits = readout.new_full((1, readout.shape[1], height * STRIDE, width * STRIDE), BACKGROUND_LOGIT)
    whole = 0
    for index, box in enumerate(boxes):
        if box is None:
            continue
        top, bottom, left, right = box
        box_logits = network.decode(readout[:, index:index + 1, :, top:bottom, left:right],
                                    crop_features(features, box))
        if reaches_border(box_logits[0, 0], box, (height, width)):
            logits[:, index] = network.decode(readout[:, index:index + 1], features)[:, 0]
            whole += 1
        else:
            logits[:, index, top * STRIDE:bottom * STRIDE, left * STRIDE:right * STRIDE] = box_logits[:, 0]
    return logits, whole
