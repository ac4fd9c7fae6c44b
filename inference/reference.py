"""Parity with the authors' implementation: deterministic weights both implementations can build, and
the reference clip their code segmented with them (the data lives in the project's `reference/`)."""
import math
import zlib
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import torch

from inference.core import InferenceCore, MemorySchedule
from model.network import STCN
from util.preprocess import normalise

DEFAULT_REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def deterministic_tensor(name: str, shape: Sequence[int]) -> torch.Tensor:
    """The tensor the reference fixtures were made with for state-dict entry `name`: drawn from a generator
    seeded by the CRC32 of the name, scaled so that activations stay in a useful range."""
    shape = tuple(shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.long)
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=generator)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=generator)
    if len(shape) == 1:
        if name.endswith("bias"):
            return 0.02 * torch.randn(shape, generator=generator)
        # BatchNorm scale; the last BatchNorm of each residual branch is damped
        ends_branch = name.endswith("bn3.weight") or ("value_encoder" in name and name.endswith("bn2.weight"))
        return (0.25 if ends_branch else 1.0) * (1 + 0.1 * torch.randn(shape, generator=generator))
    gain = math.sqrt(2.0) if len(shape) == 4 else 1.0
    if name.startswith("key_proj"):
        gain *= 0.1  # small keys: the reference's top-k softmax exponentiates raw affinities
    return gain / math.sqrt(math.prod(shape[1:])) * torch.randn(shape, generator=generator)


def deterministic_state_dict(layout: Mapping[str, Union[torch.Tensor, Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Deterministic weights for every entry of `layout` (a state dict, or names mapped to shapes)."""
    return {name: deterministic_tensor(name, value.shape if torch.is_tensor(value) else value)
            for name, value in layout.items()}


def deterministic_stcn() -> STCN:
    """The multi-object network holding the deterministic weights, in eval mode."""
    net = STCN()
    net.load_state_dict(deterministic_state_dict(net.state_dict()), strict=True)
    return net.eval()


def segment_reference_clip(net: STCN, reference_dir: Path = DEFAULT_REFERENCE,
                           local_decode: bool = False) -> dict[str, float]:
    """Run the core on `inference_2obj.npz` and compare with the reference's probabilities (by default
    with the paper's whole-frame decoding; `local_decode` for object-local decoding)."""
    clip = np.load(Path(reference_dir) / "inference_2obj.npz")
    schedule = MemorySchedule(mem_every=int(clip["mem_every"]), top_k=int(clip["top_k"]),
                              include_last=bool(clip["include_last"]))
    core = InferenceCore(net, schedule, local_decode)
    frames = clip["frames"]
    probs = [
        core.step(normalise(frame), clip["first_mask"] if t == 0 else None, is_last=t == len(frames) - 1)
        for t, frame in enumerate(frames)
    ]
    prob = torch.stack(probs, dim=1).cpu().numpy()
    return {
        "frames": len(frames),
        "objects": len(core.object_ids),
        "mean_abs_diff": float(np.abs(prob - clip["expected_prob"]).mean()),
        "label_agreement": float((prob.argmax(axis=0) == clip["expected_labels"]).mean()),
    }
