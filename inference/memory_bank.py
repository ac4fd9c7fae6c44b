"""The memory of one group of objects: keys and values of its memory frames, plus a temporary entry.

Objects annotated at the same frame see the same memory frames, so they share keys and one affinity
(STCN); with keys per object (STM) the keys carry the object axis like the values.
Entries live in a preallocated buffer (no copy of the whole memory per added frame); with `max_frames`
the first frame is kept and the oldest other frame is overwritten.
"""
from typing import Optional

import torch


class MemoryBank:
    """Keys (1, Ck, N) or (1, K, Ck, N) and values (1, K, Cv, N) of N = T * h * w memory positions of
    K objects."""

    def __init__(self, max_frames: Optional[int] = None, initial_capacity: int = 8) -> None:
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self.max_frames = max_frames
        self.initial_capacity = initial_capacity
        self.num_frames = 0  # permanent frames; a temporary entry sits in the slot after them
        self.has_temporary = False
        self._keys: Optional[torch.Tensor] = None  # 1, (K,) Ck, capacity, h*w
        self._values: Optional[torch.Tensor] = None  # 1, K, Cv, capacity, h*w
        self._next_eviction = 1

    def add(self, key: torch.Tensor, value: torch.Tensor, temporary: bool = False) -> None:
        """Add a frame: key (1, Ck, h, w) or (1, K, Ck, h, w), value (1, K, Cv, h, w). Any temporary entry
        is dropped first; a temporary entry stays only until the next addition."""
        self.has_temporary = False
        if temporary:
            slot = self.num_frames
        elif self.max_frames is not None and self.num_frames >= self.max_frames:
            if self.max_frames == 1:
                return  # only the first frame is ever kept
            slot = self._next_eviction
            self._next_eviction = 1 + self._next_eviction % (self.max_frames - 1)
        else:
            slot = self.num_frames
        self._reserve(slot + 1, key, value)
        self._keys[..., slot, :] = key.flatten(start_dim=-2)
        self._values[..., slot, :] = value.flatten(start_dim=-2)
        if temporary:
            self.has_temporary = True
        elif slot == self.num_frames:
            self.num_frames += 1

    def _reserve(self, frames: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Make room for `frames` entries, doubling the buffer when it is full."""
        capacity = 0 if self._keys is None else self._keys.shape[-2]  # keys may carry an object axis (STM)
        if frames <= capacity:
            return
        new_capacity = max(frames, 2 * capacity, self.initial_capacity)
        if self.max_frames is not None:
            new_capacity = min(new_capacity, self.max_frames + 1)
        positions = key.shape[-2] * key.shape[-1]
        keys = key.new_empty(*key.shape[:-2], new_capacity, positions)
        values = value.new_empty(*value.shape[:-2], new_capacity, positions)
        if capacity:
            keys[..., :capacity, :] = self._keys
            values[..., :capacity, :] = self._values
        self._keys, self._values = keys, values

    def memory(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (1, (K,) Ck, N) and values (1, K, Cv, N) of every entry, the temporary one included."""
        if self._keys is None:
            raise RuntimeError("the memory bank is empty")
        frames = self.num_frames + int(self.has_temporary)
        keys = self._keys[..., :frames, :].flatten(start_dim=-2)
        values = self._values[..., :frames, :].flatten(start_dim=-2)
        return keys, values
