"""Merging saved probabilities of several runs (scales, flips, models) into one set of masks.

Each run is the `--output` folder of an evaluation made with `--save_scores`: `scores/layout.json`,
`scores/<video>/meta.json` and one `<frame>.npz` (uint8 probabilities and object ids) per output frame.
The probabilities are averaged per object id and the argmax is written as the benchmark expects.
"""
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from inference.outputs import labels_of, write_zip
from util.fileio import InputError, atomic_dir
from util.imageio import write_indexed_png


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: not found (was the run made with --save_scores?)")
    return json.loads(path.read_text())


def _videos(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "scores").iterdir() if (p / "meta.json").is_file())


def _load_frame(path: Path) -> tuple[np.ndarray, list[int]]:
    if not path.is_file():
        raise InputError(f"{path}: missing frame scores")
    with np.load(path) as data:
        return data["prob"], data["object_ids"].tolist()


def merge_frame(paths: list[Path]) -> tuple[torch.Tensor, list[int]]:
    """Mean probabilities (K+1, H, W) over runs for the union of their objects, and the object ids."""
    frames = [_load_frame(p) for p in paths]
    object_ids = []
    for _, ids in frames:
        object_ids += [i for i in ids if i not in object_ids]
    shape = frames[0][0].shape[1:]
    total = torch.zeros(len(object_ids) + 1, *shape)
    for path, (prob, ids) in zip(paths, frames):
        if prob.shape[1:] != shape:
            raise InputError(f"{path}: frame size {prob.shape[1:]} differs from {paths[0]} ({shape})")
        channels = [0] + [1 + object_ids.index(i) for i in ids]
        total[channels] += torch.from_numpy(prob).float() / 255
    return total / len(paths), object_ids


def merge_runs(runs: list[Path], output: Path, make_zip: bool = False) -> int:
    """Average the runs' probabilities and write the masks (and the zip); returns the frames written."""
    layouts = {run: _read_json(run / "scores" / "layout.json")["annotation_dir"] for run in runs}
    if len(set(layouts.values())) > 1:
        raise InputError("runs of different benchmarks cannot be merged: " +
                         ", ".join(f"{run} ({layout or 'DAVIS'} layout)" for run, layout in layouts.items()))
    annotation_dir = layouts[runs[0]]
    videos = _videos(runs[0])
    for run in runs[1:]:
        if _videos(run) != videos:
            difference = sorted(set(_videos(run)) ^ set(videos))
            raise InputError(f"{run}: its videos differ from {runs[0]}'s (e.g. {', '.join(difference[:5])})")
    written = 0
    mask_root = output / annotation_dir
    for video in tqdm(videos, desc="merging", unit="video"):
        metas = [_read_json(run / "scores" / video / "meta.json") for run in runs]
        for run, meta in zip(runs, metas):
            if meta["frames"] != metas[0]["frames"]:
                raise InputError(f"{run / 'scores' / video}: its frames differ from {runs[0] / 'scores' / video}'s")
        with atomic_dir(mask_root / video) as folder:
            for frame in metas[0]["frames"]:
                prob, object_ids = merge_frame([run / "scores" / video / f"{frame}.npz" for run in runs])
                write_indexed_png(folder / f"{frame}.png", labels_of(prob, object_ids), metas[0]["palette"])
                written += 1
    if make_zip:
        write_zip(mask_root, output / "submission.zip", annotation_dir)
    return written
