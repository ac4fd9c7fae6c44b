"""Runs the propagation core over videos: read ahead, segment, resize back, hand the frames to the
output sinks, time. One loop serves DAVIS, YouTubeVOS, generic folders and video files, one process
or several under torchrun (videos split between them)."""
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torchvision.transforms.functional import InterpolationMode, resize
from tqdm import tqdm

from inference.config import EvalConfig, RunOptions
from inference.core import InferenceCore, MemorySchedule, plan_frames
from inference.outputs import (CompletedVideos, MaskFolder, OverlayWriter, ScoreFolder, VideoTiming, labels_of,
                               prepare_scores, summarise)
from inference.prefetch import read_ahead
from inference.sources import Video, iterate_frames
from model.checkpoint import describe, load_network
from model.network import MemoryNetwork
from util.distributed import autocast, barrier, broadcast_from_rank0, init_distributed, rank_and_world, synchronise
from util.fileio import InputError, atomic_dir, remove_stale_temporaries
from util.imageio import DAVIS_PALETTE, read_indexed_png
from util.preprocess import normalise


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
    """Probabilities (K+1, H, W) at the frame's stored size, processed at `options.size`. A mask brings in the
    objects not known before; a frame whose mask holds none is segmented as if it had no mask."""
    height, width = image.shape[:2]
    if options.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
    x = normalise(image).to(options.device)
    new_ids = []
    if mask is not None:  # before resizing, so that tiny objects stay objects; known objects keep propagating
        new_ids = [int(i) for i in np.unique(mask) if i != 0 and int(i) not in core.object_ids]
        mask = torch.from_numpy(mask).to(options.device) if new_ids or options.whole_masks else None
    if options.size:
        x = resize(x, options.size, InterpolationMode.BICUBIC, antialias=True)
        if mask is not None:
            mask = resize(mask[None], options.size, InterpolationMode.NEAREST)[0]
    with autocast(options.device, options.amp):
        prob = core.step(x, mask, new_ids, is_last=is_last, whole_mask=options.whole_masks).float()
    if prob.shape[-2:] != (height, width):
        prob = F.interpolate(prob[None], (height, width), mode="bilinear", align_corners=False)[0]
    return prob.flip(-1) if options.flip else prob


@dataclass
class SegmentedFrame:
    """One segmented frame: probabilities (K+1, H, W) and labels (H, W) at its stored size, the objects
    known so far (the labels of the probabilities' channels 1..K), and the seconds its segmentation took."""

    index: int
    image: np.ndarray
    prob: torch.Tensor
    object_ids: list[int]
    labels: np.ndarray
    seconds: float


def propagate(network: MemoryNetwork, frames: Iterator[tuple[int, np.ndarray, Optional[np.ndarray]]],
              schedule: MemorySchedule, options: RunOptions = RunOptions(),
              last_index: Optional[int] = None) -> Iterator[SegmentedFrame]:
    """Segment (index, RGB image, mask or None) in increasing index order, read in the background; frames
    left out of `frames` are skipped. Frame `last_index` (when known) is not memorised: nothing needs it."""
    core = InferenceCore(network, schedule, options.local_decode)
    with closing(read_ahead(frames)) as ahead:
        for index, image, mask in ahead:
            while core.frame_index < index - 1:
                core.skip()
            synchronise(options.device)
            start = time.perf_counter()
            prob = _segment_frame(core, image, mask, index == last_index, options)
            labels = labels_of(prob, core.object_ids)
            yield SegmentedFrame(index, image, prob, list(core.object_ids), labels, time.perf_counter() - start)


def segment_video(network: MemoryNetwork, video: Video, schedule: MemorySchedule, out_dir: Path,
                  options: RunOptions = RunOptions(), scores_dir: Optional[Path] = None) -> VideoTiming:
    """Segment one video: `out_dir/<video>/<frame>.png`, an overlay video if asked, and the frames'
    probabilities under `scores_dir/<video>/` if given."""
    plan = plan_frames(video.annotated(), [f.required for f in video.frames], schedule)
    if not any(plan):
        raise InputError(f"video {video.name}: no annotated frame to start from")
    last_planned = max(i for i, p in enumerate(plan) if p)
    palette = _palette_of(video)
    frames_done, seconds = 0, 0.0
    with ExitStack() as stack:
        file_sinks = [MaskFolder(stack.enter_context(atomic_dir(out_dir / video.name)), palette)]
        if scores_dir is not None:
            file_sinks.append(ScoreFolder(stack.enter_context(atomic_dir(scores_dir / video.name)), video, palette))
        sinks = list(file_sinks)
        if options.overlay:
            sinks.append(stack.enter_context(OverlayWriter(out_dir / f"{video.name}_overlay.mp4", video, palette)))
        progress = stack.enter_context(tqdm(total=sum(plan), desc=video.name, unit="frame", leave=False))
        segmented = stack.enter_context(closing(
            propagate(network, iterate_frames(video, plan), schedule, options, last_planned)))
        for done in segmented:
            seconds += done.seconds
            frames_done += 1
            for sink in sinks:
                sink.add(video.frames[done.index], done.image, done.prob, done.object_ids, done.labels)
            progress.update()
        # Frames asked for before the first annotation have no object yet (only with --output_all).
        background = torch.ones(1, *done.labels.shape)
        for frame, planned in zip(video.frames, plan):
            if frame.required and not planned:
                for sink in file_sinks:
                    sink.add(frame, None, background, [], np.zeros(done.labels.shape, np.uint8))
    return VideoTiming(video.name, frames_done, seconds)


def run_videos(network: MemoryNetwork, videos: list[Video], schedule: MemorySchedule, out_dir: Path,
               options: RunOptions = RunOptions(), scores_dir: Optional[Path] = None,
               completed: Optional[CompletedVideos] = None) -> list[VideoTiming]:
    """Segment this process's share of `videos` (all of them without torchrun) and return the timings of the
    whole set in its order. With `completed`, the videos an earlier run finished are skipped (rank 0 decides,
    and the ranks split what is left) and each finished video is recorded."""
    rank, world = rank_and_world()
    finished = rank == 0 and completed is not None
    earlier = broadcast_from_rank0([t for t in map(completed.timing, videos) if t is not None] if finished else [])
    done_names = {t.name for t in earlier}
    mine = [video for video in videos if video.name not in done_names][rank::world]
    if earlier and rank == 0:
        print(f"{len(earlier)} of {len(videos)} videos finished by an earlier run with these settings: skipped "
              f"(--rerun segments them again)", flush=True)
    timings = []
    with tqdm(mine, desc=f"videos (rank {rank})" if world > 1 else "videos", unit="video") as bar:
        for video in bar:
            if completed is not None:
                completed.forget(video)
            timings.append(segment_video(network, video, schedule, out_dir, options, scores_dir))
            if completed is not None:
                completed.mark(video, timings[-1])
    if dist.is_available() and dist.is_initialized():
        gathered: list = [None] * world
        dist.all_gather_object(gathered, timings)
        timings = [t for part in gathered for t in part]
    by_name = {t.name: t for t in earlier + timings}
    return [by_name[video.name] for video in videos]


def run_inference(config: EvalConfig, videos: list[Video], mask_dir: Path, annotation_dir: str = "") -> Optional[dict]:
    """Segment `videos` into `mask_dir` (`annotation_dir` is its path under the output, for merging
    saved scores), continuing an interrupted run into the same output; on rank 0 write timing.json, print
    the speed and return the summary (None elsewhere)."""
    network = load_network(config.model, config.options.device, config.similarity)
    rank = rank_and_world()[0]
    if rank == 0:
        print(f"{config.model}: {describe(network)}", flush=True)
    init_distributed(config.options.device)
    scores = config.output / "scores" if config.save_scores else None
    completed = CompletedVideos(config.output, config.settings(), [mask_dir] + ([scores] if scores else []),
                                reuse=not config.rerun)
    if rank == 0:  # before any rank writes: the others wait for rank 0's list of finished videos
        if scores is not None:
            prepare_scores(config.output, annotation_dir)
        left = [p for folder in {config.output, mask_dir, scores, completed.folder} if folder is not None
                for p in remove_stale_temporaries(folder)]
        if left:
            print(f"removed {len(left)} file(s) or folder(s) a killed run was writing", flush=True)
    timings = run_videos(network, videos, config.schedule, mask_dir, config.options, scores, completed)
    barrier()
    if rank != 0:
        return None
    summary = summarise(timings, config.output / "timing.json")
    print(f"{summary['frames']} frames of {summary['videos']} videos in {summary['seconds']:.1f} s: "
          f"{summary['fps']:.2f} FPS (multi-object, IO excluded); masks in {mask_dir}")
    return summary
