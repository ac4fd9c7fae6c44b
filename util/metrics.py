"""DAVIS J&F with the semi-supervised protocol of the official davis2017-evaluation toolkit.

J is the region similarity (IoU) and F the boundary F-measure of each object on every frame but the first
and the last. Label 255 (void) in the ground truth counts as background, as in the toolkit: it computes
void masks but its semi-supervised evaluation does not pass them on (the `void` arguments of
`region_similarity` and `boundary_measure` are there for protocols that do). Per object the toolkit's
mean, recall (fraction of frames above 0.5) and decay (first quarter minus last quarter) are computed, and
the global numbers are means over all objects. `evaluate_davis` reads a DAVIS folder and a results folder
of palette PNGs, computes everything (in parallel over sequences) and writes the toolkit's CSV files.
"""
import csv
import io
import json
import math
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator, Optional, Union

import cv2
import numpy as np
from tqdm import tqdm

from util.fileio import InputError, atomic_path
from util.imageio import (
    VOID_LABEL,
    entries,
    merge_objects,
    open_image,
    read_davis_sequences,
    read_indexed_png,
    read_label_map,
)

BOUNDARY_TOLERANCE = 0.008  # of the image diagonal, as in the toolkit
MEASURES = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PathLike = Union[str, Path]


def disk(radius: int) -> np.ndarray:
    """The (2r+1)^2 uint8 disk structuring element of skimage.morphology.disk: x^2 + y^2 <= r^2."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel-wide boundary of a binary mask, offset half a pixel towards the origin (the toolkit's seg2bmap)."""
    mask = mask.astype(bool)
    east, south, south_east = np.zeros_like(mask), np.zeros_like(mask), np.zeros_like(mask)
    east[:, :-1] = mask[:, 1:]
    south[:-1, :] = mask[1:, :]
    south_east[:-1, :-1] = mask[1:, 1:]
    boundary = (mask ^ east) | (mask ^ south) | (mask ^ south_east)
    boundary[-1, :] = mask[-1, :] ^ east[-1, :]
    boundary[:, -1] = mask[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def region_similarity(gt: np.ndarray, prediction: np.ndarray, void: Optional[np.ndarray] = None) -> np.ndarray:
    """J: intersection over union of binary masks over their last two axes, 1 where both are empty."""
    valid = np.ones_like(gt, dtype=bool) if void is None else ~void
    gt, prediction = gt.astype(bool), prediction.astype(bool)
    intersection = np.sum(gt & prediction & valid, axis=(-2, -1))
    union = np.sum((gt | prediction) & valid, axis=(-2, -1))
    return np.where(union == 0, 1.0, intersection / np.maximum(union, 1))


def boundary_measure(gt: np.ndarray, prediction: np.ndarray, void: Optional[np.ndarray] = None) -> float:
    """F: boundary F-measure of two binary HxW masks, boundaries matched within 0.8% of the diagonal."""
    valid = np.ones_like(gt, dtype=bool) if void is None else ~void
    gt_boundary = boundary_map(gt.astype(bool) & valid)
    predicted_boundary = boundary_map(prediction.astype(bool) & valid)
    footprint = disk(math.ceil(BOUNDARY_TOLERANCE * math.hypot(*gt.shape)))
    gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), footprint) > 0
    predicted_dilated = cv2.dilate(predicted_boundary.astype(np.uint8), footprint) > 0
    gt_count, predicted_count = gt_boundary.sum(), predicted_boundary.sum()
    if gt_count == 0 or predicted_count == 0:
        return 1.0 if gt_count == predicted_count else 0.0  # the toolkit's precision/recall of 1/0 or 0/1
    precision = np.sum(predicted_boundary & gt_dilated) / float(predicted_count)
    recall = np.sum(gt_boundary & predicted_dilated) / float(gt_count)
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame values, exactly as the toolkit's db_statistics."""
    values = np.asarray(per_frame, dtype=np.float64)
    # The toolkit casts the bin edges to uint8, which wraps above 255 frames; % 256 does the same explicitly.
    edges = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64) % 256
    bins = [values[edges[i]:edges[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(values)
        recall = np.nanmean(values > 0.5)
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def evaluate_sequence(gt: np.ndarray, prediction: np.ndarray, num_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame (J, F), each (num_objects, T), of (T, H, W) label maps (gt 255: background)."""
    j_values = np.zeros((num_objects, len(gt)))
    f_values = np.zeros((num_objects, len(gt)))
    for k in range(num_objects):
        gt_object, predicted_object = gt == k + 1, prediction == k + 1
        j_values[k] = region_similarity(gt_object, predicted_object)
        f_values[k] = [boundary_measure(g, p) for g, p in zip(gt_object, predicted_object)]
    return j_values, f_values


# An object counts as tracked when it is found (J above 0.5, the toolkit's recall criterion) in this share of
# the frames that show it (a lost object stays lost; one that is tracked dips below 0.5 now and then, at the
# frame's edge or when it is small); a speed figure is claimed only for runs that track every object.
TRACKED_SHARE = 0.8


class VideoScore:
    """J&F of a video scored frame by frame while it is segmented (no frames kept), and for each object the
    share of the frames showing it in which it was found (J above 0.5). Leave out the annotated first frame,
    as the toolkit does."""

    def __init__(self, num_objects: int) -> None:
        self.j_values: list[list[float]] = [[] for _ in range(num_objects)]
        self.f_values: list[list[float]] = [[] for _ in range(num_objects)]
        self.shown = np.zeros(num_objects, np.int64)
        self.found = np.zeros(num_objects, np.int64)

    def add(self, gt: np.ndarray, prediction: np.ndarray) -> None:
        """Score one frame: H x W label maps (object k is label k + 1)."""
        j_values, f_values = evaluate_sequence(gt[None], prediction[None], len(self.j_values))  # K, 1 each
        for k, (j, f) in enumerate(zip(j_values[:, 0], f_values[:, 0])):
            self.j_values[k].append(float(j))
            self.f_values[k].append(float(f))
            if (gt == k + 1).any():
                self.shown[k] += 1
                self.found[k] += j > 0.5

    def jf(self) -> float:
        """The mean over objects of (J-Mean + F-Mean) / 2, as the toolkit's J&F-Mean of one video."""
        return float(np.mean([(np.mean(j) + np.mean(f)) / 2 for j, f in zip(self.j_values, self.f_values)]))

    def found_shares(self) -> list[float]:
        """Per object, the share of the frames showing it in which it was found (1 if none showed it)."""
        return [float(found / shown) if shown else 1.0 for found, shown in zip(self.found, self.shown)]

    def tracks(self) -> bool:
        """Whether every object was found in at least TRACKED_SHARE of the frames that show it."""
        return min(self.found_shares(), default=1.0) >= TRACKED_SHARE


def _read_labels(path: Path, year: int) -> tuple[np.ndarray, str]:
    """A ground-truth or result mask as the toolkit reads it: an indexed PNG for 2017; for 2016 also the
    release's 0/255 grey masks (`util.imageio.read_label_map`)."""
    return read_label_map(path) if year == 2016 else (read_indexed_png(path)[0], "P")


def _read_annotations(folder: Path, year: int) -> tuple[list[str], np.ndarray]:
    """(frame names, (T, H, W) labels) of one sequence's ground truth, all frames of one size."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such annotation folder")
    paths = entries(folder, "*.png")
    if len(paths) < 3:
        raise InputError(f"{folder}: {len(paths)} annotated frames; the protocol needs at least 3 "
                         "(the first and last are not evaluated)")
    frames = []
    for path in paths:
        labels, mode = _read_labels(path, year)
        if frames and labels.shape != frames[0].shape:
            raise InputError(f"{path}: size {labels.shape[1]}x{labels.shape[0]} differs from the sequence's "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}")
        frames.append(merge_objects(labels, mode, keep_void=True) if year == 2016 else labels)
    return [path.stem for path in paths], np.stack(frames)


def _read_results(folder: Path, names: list[str], shape: tuple[int, int], num_objects: int, year: int) -> np.ndarray:
    """(T, H, W) result labels of frames `names`, checked for presence, size and object ids."""
    if not folder.is_dir():
        raise InputError(f"{folder}: missing results folder for sequence {folder.name}")
    frames = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.is_file():
            raise InputError(f"{path}: missing result frame (every annotated frame but the first and last is needed)")
        labels, mode = _read_labels(path, year)
        if labels.shape != shape:
            raise InputError(f"{path}: size {labels.shape[1]}x{labels.shape[0]} differs from the annotation's "
                             f"{shape[1]}x{shape[0]}")
        if year == 2016:
            labels = merge_objects(labels, mode)
        if labels.max() > num_objects:
            raise InputError(f"{path}: label {labels.max()} is higher than the number of objects ({num_objects}) "
                             f"in the first annotation of {folder.name}")
        frames.append(labels)
    return np.stack(frames)


def _evaluate_job(job: tuple[Path, Path, str, int]) -> tuple[str, np.ndarray, np.ndarray]:
    """Worker: (sequence, J, F) for one sequence, the number of objects taken from its first annotation."""
    annotation_root, results_dir, sequence, year = job
    names, gt = _read_annotations(annotation_root / sequence, year)
    first = gt[0]
    num_objects = int(first[first != VOID_LABEL].max(initial=0))
    prediction = _read_results(results_dir / sequence, names[1:-1], first.shape, num_objects, year)
    j_values, f_values = evaluate_sequence(gt[1:-1], prediction, num_objects)
    return sequence, j_values, f_values


def _summarise(per_sequence: list[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """The global means over objects and each object's (J-Mean, F-Mean), keyed as in results.json."""
    stats = {"J": [], "F": []}
    per_object = {}
    for sequence, j_values, f_values in per_sequence:
        for k in range(len(j_values)):
            j_stats, f_stats = statistics(j_values[k]), statistics(f_values[k])
            stats["J"].append(j_stats)
            stats["F"].append(f_stats)
            per_object[f"{sequence}_{k + 1}"] = [j_stats[0], f_stats[0]]
    j_mean, j_recall, j_decay = (float(np.mean(column)) for column in zip(*stats["J"]))
    f_mean, f_recall, f_decay = (float(np.mean(column)) for column in zip(*stats["F"]))
    return {"J&F-Mean": (j_mean + f_mean) / 2, "J-Mean": j_mean, "J-Recall": j_recall, "J-Decay": j_decay,
            "F-Mean": f_mean, "F-Recall": f_recall, "F-Decay": f_decay, "per_object": per_object}


def _csv_text(rows: list[list[str]]) -> str:
    """Rows as CSV text with '\\n' line ends, like pandas.DataFrame.to_csv."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_results(results_dir: PathLike, subset: str, numbers: dict) -> None:
    """Write global_results-<subset>.csv, per-sequence_results-<subset>.csv and results.json, atomically."""
    results_dir = Path(results_dir)
    global_rows = [list(MEASURES), [f"{numbers[m]:.3f}" for m in MEASURES]]  # the toolkit's float_format="%.3f"
    sequence_rows = [["Sequence", "J-Mean", "F-Mean"]]
    sequence_rows += [[name, f"{j:.3f}", f"{f:.3f}"] for name, (j, f) in numbers["per_object"].items()]
    outputs = {
        f"global_results-{subset}.csv": _csv_text(global_rows),
        f"per-sequence_results-{subset}.csv": _csv_text(sequence_rows),
        "results.json": json.dumps(numbers, indent=1) + "\n",
    }
    for name, text in outputs.items():
        with atomic_path(results_dir / name) as temporary:
            temporary.write_text(text)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned text columns."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return "\n".join(" ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header] + rows)


def format_tables(numbers: dict, subset: str) -> str:
    """The global and per-object tables as the toolkit prints them."""
    global_table = _table(list(MEASURES), [[f"{numbers[m]:.6f}" for m in MEASURES]])
    object_rows = [[name, f"{j:.6f}", f"{f:.6f}"] for name, (j, f) in numbers["per_object"].items()]
    sequence_table = _table(["Sequence", "J-Mean", "F-Mean"], object_rows)
    return (f"--------------------------- Global results for {subset} ---------------------------\n"
            f"{global_table}\n\n"
            f"---------- Per sequence results for {subset} ----------\n"
            f"{sequence_table}")


# Below this many annotated pixels x frames (about 240 frames at 480p, a few seconds of work), evaluating in
# this process beats starting workers, which re-import the calling script (torch included: seconds each).
PARALLEL_MIN_PIXEL_FRAMES = 100_000_000


def default_workers() -> int:
    """Worker processes for the evaluation: at most 2, no more than the CPUs."""
    return min(2, os.cpu_count() or 1)


def _pixel_frames(annotation_root: Path, sequences: list[str]) -> int:
    """Annotated frames x pixels over the sequences (sizes from the first PNG headers): the work to do."""
    total = 0
    for sequence in sequences:
        frames = entries(annotation_root / sequence, "*.png")
        if frames:
            with open_image(frames[0]) as first:
                total += len(frames) * first.width * first.height
    return total


def evaluate_davis(davis_path: PathLike, results_dir: PathLike, subset: str = "val", year: int = 2017,
                   workers: Optional[int] = None, progress: bool = True, resolution: str = "480p") -> dict:
    """Evaluate a results folder (<seq>/<frame>.png palette PNGs) on DAVIS, write the CSV/JSON files there.
    `workers` processes (default: `default_workers()` for big sets, else this process only).

    The ground truth is `Annotations/<resolution>` (the results must have its sizes). Returns the numbers
    of results.json. Bad input raises InputError before anything is written.
    """
    if year not in (2016, 2017):
        raise ValueError(f"year must be 2016 or 2017, got {year}")
    results_dir = Path(results_dir)
    sequences = read_davis_sequences(Path(davis_path), subset, year)
    annotation_root = Path(davis_path) / "Annotations" / resolution
    if not annotation_root.is_dir():
        raise InputError(f"{annotation_root}: no such annotation folder (is --davis_path a DAVIS folder?)")
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: no such results folder")
    jobs = [(annotation_root, results_dir, sequence, year) for sequence in sequences]
    if workers is None:
        big = _pixel_frames(annotation_root, sequences) >= PARALLEL_MIN_PIXEL_FRAMES
        workers = default_workers() if big else 1
    per_sequence = _run_jobs(jobs, workers, progress)
    if not any(len(j_values) for _, j_values, _ in per_sequence):
        raise InputError(f"{annotation_root}: no object to evaluate (every first annotation of the set is empty)")
    numbers = _summarise(per_sequence)
    write_results(results_dir, subset, numbers)
    return numbers


def _run_jobs(jobs: list, workers: int, progress: bool) -> list:
    """Evaluate sequences in order, in `workers` fresh processes (forkserver: safe beside torch threads).

    The first failing sequence's error is raised once running jobs have ended and the others are cancelled.
    """
    with tqdm(total=len(jobs), desc="J&F", unit="seq", disable=not progress) as bar:
        if workers <= 1 or len(jobs) == 1:
            return [_evaluate_job(job) for job in _counted(jobs, bar)]
        context = multiprocessing.get_context("forkserver")
        executor = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context)
        try:
            futures = [executor.submit(_evaluate_job, job) for job in jobs]
            return [future.result() for future in _counted(futures, bar)]
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def _counted(items: list, bar: tqdm) -> Iterator:
    """Yield `items`, advancing the progress bar after each one has been used."""
    for item in items:
        yield item
        bar.update()
