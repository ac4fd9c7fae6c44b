"""The propagation core: the only propagation logic, driven frame by frame by every evaluation script.

A caller feeds frames in order with `step`; a frame that carries a mask introduces new objects, whose
mask takes over their pixels there and whose memory starts there, while earlier objects keep
propagating. Only the memory banks persist between frames.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from inference.local_decode import MARGIN, LocalDecoder
from inference.memory_bank import MemoryBank
from model.aggregate import aggregate
from model.network import MemoryNetwork
from util.preprocess import pad_to_multiple, unpad

# Affinity elements (memory positions x query positions) computed at once: bounds the peak memory
# of matching, whatever the memory size (256 MB in fp32).
AFFINITY_BUDGET = 1 << 26


@dataclass(frozen=True)
class MemorySchedule:
    """When frames enter memory: every `mem_every` frames after the last memory frame or annotation
    (Table 1 of the supplementary), optionally the previous frame as a temporary entry, top-k readout
    (0 = full softmax), a cap on memory frames per object group (None = unlimited, as in the paper) and
    kernelized reading (KMN) with the given Gaussian std in stride-16 pixels (None = off)."""

    mem_every: int = 5
    include_last: bool = False
    top_k: int = 20
    max_mem_frames: Optional[int] = None
    kernel_sigma: Optional[float] = None

    def is_memory_frame(self, index: int, last_memory_index: Optional[int]) -> bool:
        """Whether an unannotated frame enters memory for good."""
        return last_memory_index is not None and index - last_memory_index >= self.mem_every


def plan_frames(annotated: Sequence[bool], required: Sequence[bool], schedule: MemorySchedule) -> list[bool]:
    """Which frames of a video must be processed: annotated ones, and after the first annotation
    those asked for, memory frames, and (with include_last) all. Reading can then skip the rest."""
    plan = []
    last_memory = None
    for index, (has_mask, wanted) in enumerate(zip(annotated, required)):
        is_memory = has_mask or schedule.is_memory_frame(index, last_memory)
        plan.append(has_mask or (last_memory is not None and (wanted or is_memory or schedule.include_last)))
        if is_memory:
            last_memory = index
    return plan


@dataclass
class _ObjectGroup:
    """Objects first annotated at the same frame: they share memory keys and one affinity."""

    indices: list[int]  # positions in the core's object list (0-based)
    bank: MemoryBank


class InferenceCore:
    """Propagates object masks through a video, one frame at a time.

    `object_ids` lists the objects known so far (the caller's labels, in order of appearance); the
    probabilities returned by `step` are (K+1, H, W): background first, then `object_ids` in order.
    Every object is decoded over the whole frame (the paper's computation) unless `local_decode`, which
    decodes it near where it can be (`self.local`, inference/local_decode.py); its memory values then carry
    one more channel, each object's mask per stride-16 cell.
    """

    def __init__(self, network: MemoryNetwork, schedule: MemorySchedule = MemorySchedule(),
                 local_decode: bool = False, margin: int = MARGIN) -> None:
        self.network = network
        self.schedule = schedule
        self.local = LocalDecoder(network, margin) if local_decode else None
        self.object_ids: list[int] = []
        self.groups: list[_ObjectGroup] = []
        self.frame_index = -1
        self.last_memory_index: Optional[int] = None

    def skip(self) -> None:
        """Advance past a frame without processing it (see `plan_frames`)."""
        self.frame_index += 1

    @torch.inference_mode()
    def step(self, image: torch.Tensor, mask: Optional[Union[np.ndarray, torch.Tensor]] = None,
             new_object_ids: Sequence[int] = (), is_last: bool = False, whole_mask: bool = False) -> torch.Tensor:
        """Segment the next frame; returns probabilities (K+1, H, W) over background and known objects.

        image: normalised (3, H, W). mask: label map (H, W) holding the new objects (other labels are
        ignored); new_object_ids: the labels of `mask` that are new objects (default: all non-zero
        labels in it). is_last: the frame is not encoded into memory (no later frame needs it).
        whole_mask: `mask` gives every object at this frame (a user's correction): the known objects take
        it too (an object it lacks is absent there), and its new labels are new objects.
        """
        self.frame_index += 1
        padded, pads = pad_to_multiple(image.unsqueeze(0), 16)
        padded = self.network.as_input(padded)
        features = self.network.encode_key(padded)
        prob = self._propagate(features, padded.shape[-2:])  # K+1, H', W'
        is_memory = mask is not None or self.schedule.is_memory_frame(self.frame_index, self.last_memory_index)
        if mask is not None and whole_mask:
            prob = self._take_known(prob, mask, pads)
            new_object_ids = [i for i in torch.as_tensor(mask).unique().tolist() if i != 0 and i not in self.object_ids]
        if mask is not None and (new_object_ids or not whole_mask):
            prob = self._add_objects(prob, mask, new_object_ids, pads)
        if self.local is not None and self.groups:
            self.local.observe(prob[1:])
        if self.groups and not is_last and (is_memory or self.schedule.include_last):
            self._memorise(padded, features, prob, temporary=not is_memory)
            if is_memory:
                self.last_memory_index = self.frame_index
        return unpad(prob, pads)

    def _propagate(self, features, size: torch.Size) -> torch.Tensor:
        """Probabilities of the known objects from their memories, aggregated with the background."""
        if not self.groups:
            return features.key.new_ones(1, *size)
        readouts = []
        for group in self.groups:
            memory_key, memory_value = group.bank.memory()
            affinity_per_query = memory_key.numel() // memory_key.shape[-2]  # N, or K*N with keys per object
            chunk = max(1, AFFINITY_BUDGET // affinity_per_query)
            readouts.append(self.network.read_memory(
                features.key, memory_key, memory_value, self.schedule.top_k, chunk, self.schedule.kernel_sigma
            ))
        readout = torch.cat(readouts, dim=1)  # 1, K, Cv(+1), h, w: groups hold consecutive objects in order
        decoder = self.network if self.local is None else self.local
        logits = decoder.decode(readout, features)
        return aggregate(torch.sigmoid(logits)[0], dim=0)  # from K, H', W' objects

    def _take_known(self, prob: torch.Tensor, mask: Union[np.ndarray, torch.Tensor], pads) -> torch.Tensor:
        """The known objects' probabilities replaced by their masks in `mask` (a correction), re-aggregated."""
        if not self.object_ids:
            return prob
        labels = torch.as_tensor(mask if torch.is_tensor(mask) else np.asarray(mask), device=prob.device)
        one_hot = torch.stack([labels == i for i in self.object_ids]).float()  # K, H, W
        return aggregate(torch.nn.functional.pad(one_hot, pads), dim=0)

    def _add_objects(self, prob: torch.Tensor, mask: Union[np.ndarray, torch.Tensor],
                     new_object_ids: Sequence[int], pads) -> torch.Tensor:
        """The new objects' masks replace what was predicted under them; the result is re-aggregated."""
        labels = torch.as_tensor(mask if torch.is_tensor(mask) else np.asarray(mask), device=prob.device)
        new_ids = [int(i) for i in (new_object_ids or labels.unique().tolist()) if int(i) != 0]
        known = [i for i in new_ids if i in self.object_ids]
        if known:
            raise ValueError(f"frame {self.frame_index}: objects {known} were already given at an earlier frame (a "
                             "later mask holds only the objects that first appear there)")
        if not new_ids:
            return prob
        one_hot = torch.stack([labels == i for i in new_ids]).float()  # K_new, H, W
        one_hot = torch.nn.functional.pad(one_hot, pads)
        object_prob = prob[1:] * (one_hot.sum(dim=0) < 0.5)  # zero the old objects under the new masks
        first_index = len(self.object_ids)
        self.object_ids += new_ids
        if self.local is not None:
            self.local.audit_next()
        self.groups.append(_ObjectGroup(
            list(range(first_index, len(self.object_ids))), MemoryBank(self.schedule.max_mem_frames)
        ))
        return aggregate(torch.cat([object_prob, one_hot]), dim=0)

    def _memorise(self, padded: torch.Tensor, features, prob: torch.Tensor, temporary: bool) -> None:
        """Encode every known object's memory from its (soft) probability and add it to its group."""
        keys, values = self.network.encode_memory(padded, features, prob[1:].unsqueeze(0))
        if self.local is not None:
            values = self.local.with_mask_cells(values)
        for group in self.groups:  # values 1, K, Cv, h, w; keys 1, Ck, h, w or 1, K, Ck, h, w
            group_keys = keys[:, group.indices] if self.network.keys_per_object else keys
            group.bank.add(group_keys, values[:, group.indices], temporary=temporary)
