"""An annotation session: the state behind the browser tool (scripts/app.py), usable without it.

A user marks objects on a frame, propagates, corrects any frame and propagates again from it, then exports.
Frames stay on disk and are read one at a time; masks are written to the session folder as they are made,
so neither a long video nor its masks have to fit in memory.
"""
import threading
import zipfile
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from inference.outputs import blend_labels, video_fps
from inference.sources import mask_size_problem, video_frames, video_length
from stcn.api import Segmenter
from util.fileio import InputError, atomic_path
from util.imageio import DAVIS_PALETTE, list_images, read_image, read_indexed_png, write_indexed_png


class FrameStore:
    """A video's frames, read one at a time by index: a folder of images as it is, or a video file decoded
    once into lossless PNGs under `cache` (so that any frame can be shown at once, and pixels are those a
    sequential read of the file gives)."""

    def __init__(self, source: Path, cache: Path) -> None:
        source = Path(source)
        self.fps = 24.0
        if source.is_dir():
            self.paths = list_images(source)  # an InputError when there is none
        elif source.is_file():
            self.fps = video_fps(source)
            self.paths = _decode_to_png(source, cache)
        else:
            raise InputError(f"{source}: no such video file or frame folder")
        self.name = source.stem if source.is_file() else source.resolve().name
        self.names = [path.stem for path in self.paths]
        first = self.read(0)
        self.height, self.width = first.shape[:2]

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as RGB uint8 (H, W, 3); an InputError naming the file if its size is not the first's."""
        image = read_image(self.paths[index])
        if index and image.shape[:2] != (self.height, self.width):
            raise InputError(f"{self.paths[index]}: frame is {image.shape[1]}x{image.shape[0]} but the video's first "
                             f"frame is {self.width}x{self.height}")
        return image


def _decode_to_png(video: Path, cache: Path) -> list[Path]:
    video_length(video)  # an InputError naming the file if OpenCV cannot read it
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, rgb in enumerate(video_frames(video)):
        path = cache / f"{index:05d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        paths.append(path)
    if not paths:
        raise InputError(f"{video}: no frame could be decoded")
    return paths


class AnnotationSession:
    """Marks (masks a user gave), propagation from a marked frame, stop and continue, and export.

    Propagating from marked frame k runs the inference core forward over the earlier marked frames, k and
    every later frame (a later marked frame keeps its mask and becomes memory), then backward over the other
    marked frames, k and the frames down to the previous marked frame: every mark is memory both ways. Every
    mask given counts for all objects at its frame (`whole_masks`): a correction replaces what was predicted
    there.
    """

    def __init__(self, segmenter: Segmenter, frames: FrameStore, folder: Path, palette: Optional[list[int]] = None,
                 **settings) -> None:
        self.segmenter = segmenter
        self.frames = frames
        self.folder = Path(folder)
        self.palette = palette or DAVIS_PALETTE
        self.colours = np.array(self.palette[:768], dtype=np.uint8).reshape(-1, 3)  # by label, for overlays
        self.settings = settings  # Segmenter.segment's keyword arguments (top_k, mem_every, size, ...)
        self.marked: dict[int, Path] = {}
        self.done: set[int] = set()  # frames with a mask, given or propagated
        self._run: Optional[Iterator[int]] = None
        self._stop_asked = False
        self._lock = threading.Lock()  # held while a propagation runs

    # ---- marks and masks ----------------------------------------------------------------------------
    def _mask_path(self, index: int) -> Path:
        return self.folder / "masks" / f"{self.frames.names[index]}.png"

    def mark(self, index: int, labels: np.ndarray) -> None:
        """Give frame `index` the mask `labels` (H, W uint8): it becomes a memory frame of every propagation
        after it. An InputError if its size is not the frame's."""
        labels = np.asarray(labels)
        if labels.ndim != 2 or (problem := mask_size_problem(labels, np.empty((self.frames.height, self.frames.width)))):
            shape = "x".join(map(str, labels.shape[::-1]))
            raise InputError(problem or f"the mask is {shape}, not a label map of the frame's size")
        labels = labels.astype(np.uint8)
        path = self.folder / "marked" / f"{self.frames.names[index]}.png"
        write_indexed_png(path, labels, self.palette)
        self.marked[index] = path
        self._write(index, labels)

    def mask(self, index: int) -> np.ndarray:
        """The current label map of frame `index` (all background where nothing was given or propagated)."""
        if index in self.done:
            return read_indexed_png(self._mask_path(index))[0]
        return np.zeros((self.frames.height, self.frames.width), np.uint8)

    def _write(self, index: int, labels: np.ndarray) -> None:
        write_indexed_png(self._mask_path(index), labels, self.palette)
        self.done.add(index)

    # ---- propagation ----------------------------------------------------------------------------------
    def start(self, index: int) -> None:
        """Begin a propagation from marked frame `index` (advance it with `steps`); replaces one not finished."""
        if self._lock.locked():
            raise InputError("a propagation is running: stop it first")
        if index not in self.marked:
            raise InputError(f"frame {index} has no mask: mark objects on it (or open a marked frame) first")
        self._run = self._propagation(index)

    def steps(self) -> Iterator[int]:
        """The frames the current propagation segments, one at a time, until it ends or `stop` is called; after
        a stop, the next `steps` continues where it stopped (the same masks as a run never stopped). One caller
        at a time: another gets an InputError."""
        if not self._lock.acquire(blocking=False):
            raise InputError("a propagation is running already")
        try:
            self._stop_asked = False
            while self._run is not None and not self._stop_asked:
                try:
                    index = next(self._run)
                except StopIteration:
                    self._run = None
                    return
                except BaseException:
                    self._run = None  # a failed propagation cannot be continued; start again
                    raise
                yield index
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Ask the running propagation to pause after the frame it is on (from another thread, e.g. a Stop
        button); nothing to do when none runs."""
        if self._lock.locked():
            self._stop_asked = True

    @property
    def propagating(self) -> bool:
        """Whether a propagation was started and has frames left (stopped or running)."""
        return self._run is not None

    def _propagation(self, start: int) -> Iterator[int]:
        marked = sorted(self.marked)
        forward = [m for m in marked if m < start] + list(range(start, len(self.frames)))
        yield from self._segment(forward, written=lambda i: i > start)
        previous = max((m for m in marked if m < start), default=-1)
        others = [m for m in marked if m < start] + [m for m in reversed(marked) if m > start]
        backward = others + list(range(start, previous, -1))
        yield from self._segment(backward, written=lambda i: i < start)

    def _segment(self, order: list[int], written) -> Iterator[int]:
        """Segment the frames `order` in that order (marked ones with their masks) and write those `written`
        accepts (a marked frame keeps its given mask)."""
        masks = {position: self.marked[index] for position, index in enumerate(order) if index in self.marked}
        if not any(written(i) for i in order):
            return
        images = (self.frames.read(index) for index in order)
        labels = self.segmenter.segment(images, masks, whole_masks=True, **self.settings)
        for index, frame_labels in zip(order, labels):
            if written(index) and index not in self.marked:
                self._write(index, frame_labels)
                yield index

    # ---- export -------------------------------------------------------------------------------------------
    def export_zip(self, path: Path) -> Path:
        """Every frame's mask as a palette PNG, `<video>/<frame>.png` (the DAVIS layout), zipped atomically."""
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for index, name in enumerate(self.frames.names):
                source = self._mask_path(index)
                if index not in self.done:
                    source = self.folder / "empty" / f"{name}.png"
                    write_indexed_png(source, self.mask(index), self.palette)
                archive.write(source, f"{self.frames.name}/{name}.png")
        return path

    def export_overlay(self, path: Path) -> Path:
        """An mp4 of the frames with their masks blended in, at the video's frame rate, written atomically."""
        with atomic_path(path) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.frames.fps,
                                     (self.frames.width, self.frames.height))
            for index in range(len(self.frames)):
                writer.write(cv2.cvtColor(self.overlay(index), cv2.COLOR_RGB2BGR))
            writer.release()
        return path

    def overlay(self, index: int) -> np.ndarray:
        """Frame `index` with its current mask blended in (what the tool shows)."""
        return blend_labels(self.frames.read(index), self.mask(index), self.colours)
