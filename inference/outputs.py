"""What inference writes: palette PNG masks, score files for merging, overlay videos, the timing summary
and the server zip. Sinks receive every processed frame; each writes into a folder that the runner
renames into place when the video is complete."""
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from inference.sources import FrameInfo, Video
from util.fileio import atomic_path
from util.imageio import write_indexed_png


@dataclass
class VideoTiming:
    """Frames processed and seconds spent on them (reading and writing excluded)."""

    name: str
    frames: int
    seconds: float


class CompletedVideos:
    """Which videos of an output folder are finished: `<output>/.complete/<video>.json`, written atomically
    once all of a video's files are in place, holds its timing and the settings it was made with. A rerun
    with the same settings skips those videos (unless `reuse` is off); a video cut off half-way, made with
    other settings, or whose folder under one of `folders` is gone, is segmented again."""

    def __init__(self, output: Path, settings: dict, folders: Sequence[Path] = (), reuse: bool = True) -> None:
        self.folder = output / ".complete"
        self.settings = json.loads(json.dumps(settings, default=str))  # as it reads back
        self.folders = list(folders)  # where each video has a folder of its own (masks, scores)
        self.reuse = reuse

    def _record(self, video: Video) -> Path:
        return self.folder / f"{video.name}.json"

    def timing(self, video: Video) -> Optional[VideoTiming]:
        """The timing of `video` from an earlier run with these settings; None if it is to be segmented."""
        if not self.reuse or not all((folder / video.name).is_dir() for folder in self.folders):
            return None
        try:
            record = json.loads(self._record(video).read_text())
        except (OSError, ValueError):
            return None
        if record.get("settings") != self.settings or record.get("source") != _source_of(video):
            return None
        return VideoTiming(video.name, record["processed_frames"], record["seconds"])

    def forget(self, video: Video) -> None:
        """Drop a video's record before its files are written again (a record must follow its files)."""
        self._record(video).unlink(missing_ok=True)

    def mark(self, video: Video, timing: VideoTiming) -> None:
        record = {"settings": self.settings, "source": _source_of(video),
                  "processed_frames": timing.frames, "seconds": timing.seconds}
        with atomic_path(self._record(video)) as tmp:
            tmp.write_text(json.dumps(record))


def _source_of(video: Video) -> str:
    """A digest of where a video's frames and masks come from and which frames are written: a rerun on other
    data (another --davis_path, frames added) does not reuse the outputs of this one."""
    def where(path: Optional[Path]) -> Optional[str]:
        return None if path is None else os.path.abspath(path)

    frames = [(f.name, where(f.image_path), where(f.mask_path), f.required) for f in video.frames]
    described = json.dumps([where(video.video_file), where(video.first_mask), video.merge_labels, frames])
    return hashlib.sha1(described.encode()).hexdigest()


def labels_of(prob: torch.Tensor, object_ids: list[int]) -> np.ndarray:
    """Label map (H, W) uint8 with the objects' own ids from probabilities (K+1, H, W)."""
    lookup = torch.tensor([0] + list(object_ids), dtype=torch.uint8, device=prob.device)
    return lookup[prob.argmax(dim=0)].cpu().numpy()


class MaskFolder:
    """Indexed PNGs of the frames that are asked for."""

    def __init__(self, folder: Path, palette: list[int]) -> None:
        self.folder, self.palette = folder, palette

    def add(self, frame: FrameInfo, image, prob, object_ids, labels: np.ndarray) -> None:
        if frame.required:
            write_indexed_png(self.folder / f"{frame.name}.png", labels, self.palette)


class ScoreFolder:
    """Each asked-for frame's probabilities, uint8-quantised, with its object ids (for merge_scores.py)."""

    def __init__(self, folder: Path, video: Video, palette: list[int]) -> None:
        self.folder = folder
        meta = {"video": video.name, "frames": [f.name for f in video.frames if f.required], "palette": palette}
        with atomic_path(folder / "meta.json") as tmp:
            tmp.write_text(json.dumps(meta))

    def add(self, frame: FrameInfo, image, prob: torch.Tensor, object_ids: list[int], labels) -> None:
        if frame.required:
            write_scores(self.folder / f"{frame.name}.npz", prob, object_ids)


def write_scores(path: Path, prob: torch.Tensor, object_ids: list[int]) -> None:
    """Probabilities (K+1, H, W) as round(255 p) uint8 with the object ids of channels 1..K."""
    quantised = (prob.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, prob=quantised, object_ids=np.asarray(object_ids, dtype=np.int64))


class OverlayWriter:
    """An mp4 of the frames with the masks blended in (`--overlay`), for people to look at."""

    def __init__(self, path: Path, video: Video, palette: list[int]) -> None:
        self.path = path
        self.fps = video_fps(video.video_file) if video.video_file else 24.0
        self.colours = np.array(palette, dtype=np.uint8).reshape(-1, 3)
        self.writer = None
        self._target = atomic_path(path)

    def __enter__(self) -> "OverlayWriter":
        self.temporary = self._target.__enter__()
        return self

    def add(self, frame: FrameInfo, image: np.ndarray, prob, object_ids, labels: np.ndarray) -> None:
        if self.writer is None:
            height, width = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(str(self.temporary), fourcc, self.fps, (width, height))
        self.writer.write(cv2.cvtColor(blend_labels(image, labels, self.colours), cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.release()
        self._target.__exit__(*exc)


def blend_labels(image: np.ndarray, labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) with each object's pixels half its colour (`colours`: 256 x 3, by label)."""
    blend = image.astype(np.float32)
    foreground = labels > 0
    blend[foreground] = 0.5 * blend[foreground] + 0.5 * colours[labels][foreground]
    return blend.astype(np.uint8)


def video_fps(path: Path) -> float:
    """A video file's frame rate (24 when it does not say)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 24.0
    capture.release()
    return fps


def summarise(timings: list[VideoTiming], out_path: Optional[Path] = None) -> dict:
    """Total frames, processing seconds and amortised multi-object FPS; written as JSON if asked."""
    frames = sum(t.frames for t in timings)
    seconds = sum(t.seconds for t in timings)
    summary = {
        "videos": len(timings),
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "per_video": {t.name: {"frames": t.frames, "seconds": t.seconds} for t in timings},
    }
    if out_path is not None:
        with atomic_path(out_path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    return summary


def prepare_scores(output: Path, annotation_dir: str = "") -> Path:
    """`<output>/scores/`, with layout.json telling merge_scores.py where the masks of this kind of run
    go (`annotation_dir` under the output: "" for DAVIS, "Annotations" for YouTubeVOS)."""
    folder = output / "scores"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "layout.json") as tmp:
        tmp.write_text(json.dumps({"annotation_dir": annotation_dir}))
    return folder


def write_zip(folder: Path, zip_path: Path, arcname_root: str = "") -> None:
    """Zip every PNG under `folder` (paths relative to it, under `arcname_root`), atomically."""
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.png")):
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts):
                continue  # temporary folders of an unfinished run
            archive.write(path, str(Path(arcname_root) / relative))
