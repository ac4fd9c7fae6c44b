"""Runs the propagation core over videos: read ahead, segment, resize back, write, time.

One loop serves DAVIS, YouTubeVOS, generic folders and video files. A video's masks are written to a
temporary folder that is renamed when the video is complete, so an output folder never holds a
half-written sequence.
"""
import json
import time
import zipfile
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchvision.transforms.functional import InterpolationMode, resize
from tqdm import tqdm

from inference.core import InferenceCore, MemorySchedule, plan_frames
from inference.prefetch import read_ahead
from inference.sources import FrameInfo, Video, iterate_frames
from model.checkpoint import load_weights, read_checkpoint, resolve_spec
from model.fold import fold_batchnorm
from model.network import MemoryNetwork
from util.distributed import rank_and_world, synchronise
from util.fileio import InputError, atomic_dir, atomic_path
from util.image import normalise
from util.palette import DAVIS_PALETTE, read_indexed_png, write_indexed_png


@dataclass(frozen=True)
class RunOptions:
    """How to run: device, mixed precision, processing size (shorter side; None = as stored), overlay
    video, horizontally flipped processing (test-time augmentation)."""

    device: torch.device = torch.device("cpu")
    amp: bool = False
    size: Optional[int] = None
    overlay: bool = False
    flip: bool = False


@dataclass
class VideoTiming:
    """Frames processed and seconds spent on them (reading and writing excluded)."""

    name: str
    frames: int
    seconds: float


def autocast(options: RunOptions):
    """fp16 autocast on CUDA and bf16 on the CPU when `amp` is set."""
    if not options.amp:
        return nullcontext()
    dtype = torch.float16 if options.device.type == "cuda" else torch.bfloat16
    return torch.autocast(options.device.type, dtype=dtype)


def _palette_of(video: Video) -> list[int]:
    """The palette of the video's first given mask (written masks use it), else the DAVIS palette."""
    first = next((f.mask_path for f in video.frames if f.mask_path is not None), video.first_mask)
    if first is not None and first.suffix.lower() == ".png":
        try:
            palette = read_indexed_png(first)[1]
        except InputError:
            palette = None
        if palette:
            return palette + [0] * (768 - len(palette))
    return DAVIS_PALETTE


def _segment_frame(core: InferenceCore, image: np.ndarray, mask: Optional[np.ndarray], is_last: bool,
                   options: RunOptions) -> torch.Tensor:
    """Probabilities (K+1, H, W) at the frame's stored size, processed at `options.size`."""
    height, width = image.shape[:2]
    if options.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
    x = normalise(image).to(options.device)
    new_ids = ()
    if mask is not None:
        new_ids = [int(i) for i in np.unique(mask) if i != 0]  # before resizing: tiny objects stay objects
        mask = torch.from_numpy(mask).to(options.device)
    if options.size:
        x = resize(x, options.size, InterpolationMode.BICUBIC, antialias=True)
        if mask is not None:
            mask = resize(mask[None], options.size, InterpolationMode.NEAREST)[0]
    with autocast(options):
        prob = core.step(x, mask, new_ids, is_last=is_last).float()
    if prob.shape[-2:] != (height, width):
        prob = F.interpolate(prob[None], (height, width), mode="bilinear", align_corners=False)[0]
    return prob.flip(-1) if options.flip else prob


def segment_video(network: MemoryNetwork, video: Video, schedule: MemorySchedule, out_dir: Path,
                  options: RunOptions = RunOptions(), scores_dir: Optional[Path] = None) -> VideoTiming:
    """Segment one video: `out_dir/<video>/<frame>.png`, an overlay video if asked, and the frames'
    probabilities under `scores_dir/<video>/` if given."""
    plan = plan_frames(video.annotated(), [f.required for f in video.frames], schedule)
    if not any(plan):
        raise InputError(f"video {video.name}: no annotated frame to start from")
    last_planned = max(i for i, p in enumerate(plan) if p)
    palette = _palette_of(video)
    core = InferenceCore(network, schedule)
    frames_done, seconds = 0, 0.0
    with ExitStack() as stack:
        file_sinks = [_MaskFolder(stack.enter_context(atomic_dir(out_dir / video.name)), palette)]
        if scores_dir is not None:
            file_sinks.append(_ScoreFolder(stack.enter_context(atomic_dir(scores_dir / video.name)), video, palette))
        sinks = list(file_sinks)
        if options.overlay:
            sinks.append(stack.enter_context(_OverlayWriter(out_dir / f"{video.name}_overlay.mp4", video, palette)))
        progress = stack.enter_context(tqdm(total=sum(plan), desc=video.name, unit="frame", leave=False))
        for index, image, mask in read_ahead(iterate_frames(video, plan)):
            while core.frame_index < index - 1:
                core.skip()
            synchronise(options.device)
            start = time.perf_counter()
            prob = _segment_frame(core, image, mask, index == last_planned, options)
            labels = labels_of(prob, core.object_ids)
            seconds += time.perf_counter() - start
            frames_done += 1
            for sink in sinks:
                sink.add(video.frames[index], image, prob, core.object_ids, labels)
            progress.update()
        # Frames asked for before the first annotation have no object yet (only with --output_all).
        background = torch.ones(1, *labels.shape)
        for frame, planned in zip(video.frames, plan):
            if frame.required and not planned:
                for sink in file_sinks:
                    sink.add(frame, None, background, [], np.zeros(labels.shape, np.uint8))
    return VideoTiming(video.name, frames_done, seconds)


def labels_of(prob: torch.Tensor, object_ids: list[int]) -> np.ndarray:
    """Label map (H, W) uint8 with the objects' own ids from probabilities (K+1, H, W)."""
    lookup = torch.tensor([0] + list(object_ids), dtype=torch.uint8, device=prob.device)
    return lookup[prob.argmax(dim=0)].cpu().numpy()


class _MaskFolder:
    """Indexed PNGs of the frames that are asked for."""

    def __init__(self, folder: Path, palette: list[int]) -> None:
        self.folder, self.palette = folder, palette

    def add(self, frame: FrameInfo, image, prob, object_ids, labels: np.ndarray) -> None:
        if frame.required:
            write_indexed_png(self.folder / f"{frame.name}.png", labels, self.palette)


class _ScoreFolder:
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


class _OverlayWriter:
    """An mp4 of the frames with the masks blended in (`--overlay`), for people to look at."""

    def __init__(self, path: Path, video: Video, palette: list[int]) -> None:
        self.path = path
        self.fps = _video_fps(video.video_file) if video.video_file else 24.0
        self.colours = np.array(palette, dtype=np.uint8).reshape(-1, 3)
        self.writer = None
        self._target = atomic_path(path)

    def __enter__(self) -> "_OverlayWriter":
        self.temporary = self._target.__enter__()
        return self

    def add(self, frame: FrameInfo, image: np.ndarray, prob, object_ids, labels: np.ndarray) -> None:
        if self.writer is None:
            height, width = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(str(self.temporary), fourcc, self.fps, (width, height))
        blend = image.astype(np.float32)
        foreground = labels > 0
        blend[foreground] = 0.5 * blend[foreground] + 0.5 * self.colours[labels][foreground]
        self.writer.write(cv2.cvtColor(blend.astype(np.uint8), cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.release()
        self._target.__exit__(*exc)


def _video_fps(path: Path) -> float:
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


def load_network(weights: Path, device: torch.device, similarity: Optional[str] = None) -> MemoryNetwork:
    """The evaluation network: released or own weights (stage-0 weights widened with zeros; STCN or STM,
    key encoder variant and CBAM read from the weights, the similarity from their card unless given and
    consistent), eval mode, BatchNorm folded into the convolutions, weights channels-last (faster
    convolutions here; see README)."""
    data = read_checkpoint(weights)
    network = resolve_spec(weights, data, similarity).build()
    load_weights(network, data, for_training=False, name=str(weights))
    return fold_batchnorm(network.eval()).to(device, memory_format=torch.channels_last)


def run_videos(network: MemoryNetwork, videos: list[Video], schedule: MemorySchedule, out_dir: Path,
               options: RunOptions = RunOptions(), scores_dir: Optional[Path] = None) -> list[VideoTiming]:
    """Segment this process's share of `videos` (all of them without torchrun); timings of all ranks."""
    rank, world = rank_and_world()
    mine = videos[rank::world]
    with tqdm(mine, desc=f"videos (rank {rank})" if world > 1 else "videos", unit="video") as bar:
        timings = [segment_video(network, video, schedule, out_dir, options, scores_dir) for video in bar]
    if dist.is_available() and dist.is_initialized():
        gathered: list = [None] * world
        dist.all_gather_object(gathered, timings)
        timings = [t for part in gathered for t in part]
    return timings


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
