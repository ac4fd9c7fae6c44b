"""Parity with the authors' implementation: its deterministic weights and its reference clip."""
import importlib.util
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from inference.core import InferenceCore, MemorySchedule
from model.network import STCN
from util.preprocess import normalise

DEFAULT_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def deterministic_weights_fn(reference_dir: Path = DEFAULT_REFERENCE) -> Callable[[dict], dict]:
    """`deterministic_state_dict` from the reference's detweights.py."""
    path = Path(reference_dir) / "detweights.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference weights generator not found")
    spec = importlib.util.spec_from_file_location("detweights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.deterministic_state_dict


def deterministic_stcn(reference_dir: Path = DEFAULT_REFERENCE) -> STCN:
    """The multi-object network holding the reference's deterministic weights, in eval mode."""
    net = STCN()
    net.load_state_dict(deterministic_weights_fn(reference_dir)(net.state_dict()), strict=True)
    return net.eval()


def segment_reference_clip(net: STCN, reference_dir: Path = DEFAULT_REFERENCE,
                           exact_decode: bool = True) -> dict[str, float]:
    """Run the core on `inference_2obj.npz` and compare with the reference's probabilities (by default
    with the paper's whole-frame decoding)."""
    clip = np.load(Path(reference_dir) / "inference_2obj.npz")
    schedule = MemorySchedule(mem_every=int(clip["mem_every"]), top_k=int(clip["top_k"]),
                              include_last=bool(clip["include_last"]))
    core = InferenceCore(net, schedule, exact_decode)
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
