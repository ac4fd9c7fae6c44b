"""Synthetic video object segmentation data: textured shapes moving over a panning textured background.

Objects (ellipses, polygons, blobs) of varied sizes move smoothly, rotate, breathe in scale, occlude each
other in a fixed depth order, and some leave the frame and come back. `generate_video` and `generate_image`
make samples in memory (training can draw fresh ones on the fly); `dataset.synthetic_layouts` writes them in
the on-disk layouts of the real datasets. Everything is drawn from one `np.random.Generator`, and
`sample_rng(seed, index, stream)` makes sample `index` independent of how many are generated.
"""
import math
import zlib
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

SHAPES = ("ellipse", "polygon", "blob")
_PATTERNS = ("stripes", "checker", "dots", "noise")


@dataclass(frozen=True)
class SyntheticVideo:
    """A generated video: RGB frames, per-pixel object labels, and each object's shape name."""
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    labels: np.ndarray  # (T, H, W) uint8: 0 background, k for object k (1..K)
    categories: tuple[str, ...]  # categories[k - 1] is the shape of object k


@dataclass(frozen=True)
class _Object:
    """One object: its RGBA sprite (texture everywhere, shape in alpha) and where it is in each frame."""
    sprite: np.ndarray  # (S, S, 4) uint8, alpha 255 inside the shape
    centres: np.ndarray  # (T, 2) float x, y in frame pixels
    angles: np.ndarray  # (T,) degrees
    scales: np.ndarray  # (T,)
    start: int  # first frame on which the object is drawn
    label: int
    depth: int  # drawn in increasing depth order: higher is in front
    category: str


def sample_rng(seed: int, index: int, stream: str = "") -> np.random.Generator:
    """The generator of sample `index` of a named stream: independent of how many samples are made."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), index])


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [0, 1] of `shape` (plus `channels`), about `cells` bumps along the short side."""
    height, width = shape
    grid_h = max(2, round(cells * height / min(shape)))
    grid_w = max(2, round(cells * width / min(shape)))
    coarse = rng.random((grid_h, grid_w, channels), dtype=np.float32)
    noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)
    low, high = noise.min(), noise.max()
    return (noise - low) / max(high - low, 1e-6)


def _colour(rng: np.random.Generator, vivid: bool) -> np.ndarray:
    """A random RGB colour (float 0..255): saturated and bright for objects, muted for the background."""
    saturation = rng.uniform(0.55, 1.0) if vivid else rng.uniform(0.05, 0.35)
    value = rng.uniform(0.55, 1.0) if vivid else rng.uniform(0.25, 0.75)
    hsv = np.array([[[rng.uniform(0, 180), saturation * 255, value * 255]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _pattern(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A (H, W, 1) mixing weight in [0, 1]: stripes, a checkerboard, dots or blotchy noise."""
    height, width = shape
    kind = _PATTERNS[rng.integers(len(_PATTERNS))]
    if kind == "noise":
        return _smooth_noise(rng, shape, int(rng.integers(3, 8)))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(5, 14)
    theta = rng.uniform(0, math.pi)
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    if kind == "stripes":
        weight = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
    elif kind == "checker":
        weight = (np.floor(u / period) + np.floor(v / period)) % 2
    else:
        du, dv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
        weight = (du * du + dv * dv < 0.09).astype(np.float32)
    return weight[..., None]


def _texture(rng: np.random.Generator, shape: tuple[int, int], vivid: bool) -> np.ndarray:
    """A (H, W, 3) uint8 texture: two colours mixed by a pattern, with fine grain."""
    first, second = _colour(rng, vivid), _colour(rng, vivid)
    weight = _pattern(rng, shape)
    grain = rng.normal(0, 6, (*shape, 1)).astype(np.float32)
    return np.clip(first * (1 - weight) + second * weight + grain, 0, 255).astype(np.uint8)


def _outline(rng: np.random.Generator, kind: str, radius: float) -> np.ndarray:
    """(N, 2) polygon of a shape centred on 0 whose points lie within `radius`."""
    angles = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    if kind == "ellipse":
        ratio = rng.uniform(0.45, 1.0)
        points = np.stack([np.cos(angles), ratio * np.sin(angles)], axis=1)
    elif kind == "polygon":
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, count))
        radii = rng.uniform(0.6, 1.0, count)
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    else:
        radii = np.ones_like(angles)
        for harmonic in range(2, 6):
            radii += rng.uniform(0, 0.45 / harmonic) * np.sin(harmonic * angles + rng.uniform(0, 2 * math.pi))
        radii = np.maximum(radii, 0.3) / radii.max()
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return points * radius


def _sprite(rng: np.random.Generator, kind: str, radius: float) -> np.ndarray:
    """An (S, S, 4) RGBA sprite: a vivid texture over the whole square, the shape in alpha."""
    side = 2 * math.ceil(radius) + 5
    centre = (side - 1) / 2
    alpha = np.zeros((side, side), np.uint8)
    points = np.round((_outline(rng, kind, radius) + centre) * 16).astype(np.int32)
    cv2.fillPoly(alpha, [points], 255, lineType=cv2.LINE_8, shift=4)
    return np.dstack([_texture(rng, (side, side), vivid=True), alpha])


def _centres(rng: np.random.Generator, birth: np.ndarray, length: int, size: tuple[int, int],
             extent: float) -> np.ndarray:
    """(length, 2) smooth path from `birth`: a drift with a wobble, or a swing out of the frame and back."""
    height, width = size
    steps = np.arange(length, dtype=np.float64)[:, None]
    wobble_amplitude = rng.uniform(0, 0.04) * min(size) * rng.standard_normal(2)
    wobble_period = rng.uniform(8, 30)
    wobble = wobble_amplitude * np.sin(2 * math.pi * steps / wobble_period)
    if length >= 8 and rng.random() < 0.35:
        # Swing towards the nearest edge until fully outside at the peak, then back to `birth`; the wobble
        # is kept across the swing only, so that it cannot hold the object inside.
        gaps = np.array([birth[0], width - birth[0], birth[1], height - birth[1]])
        side = int(np.argmin(gaps))
        direction = np.array([(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)][side])
        period = 2 * (length - 1) * rng.uniform(0.75, 1.0)
        swing = np.sin(2 * math.pi * steps / period)
        amplitude = 1.15 * (gaps[side] + extent + 2) / swing.max()
        return birth + wobble * (1 - np.abs(direction)) + amplitude * direction * swing
    speed = rng.uniform(0, 0.012) * math.hypot(height, width)
    heading = rng.uniform(0, 2 * math.pi)
    return birth + wobble + speed * steps * np.array([math.cos(heading), math.sin(heading)])


def _make_object(rng: np.random.Generator, label: int, depth: int, start: int, num_frames: int,
                 size: tuple[int, int], max_radius: float) -> _Object:
    """An object of random shape, size, texture and motion, drawn from frame `start` on."""
    height, width = size
    category = SHAPES[rng.integers(len(SHAPES))]
    radius = rng.uniform(0.3, 1.0) * max_radius
    scale_amplitude = rng.uniform(0, 0.15)
    length = num_frames - start
    birth = np.array([rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height])
    steps = np.arange(length)
    scales = 1 + scale_amplitude * np.sin(2 * math.pi * steps / rng.uniform(10, 40) + rng.uniform(0, 2 * math.pi))
    angles = rng.uniform(0, 360) + rng.uniform(-4, 4) * steps
    centres = _centres(rng, birth, length, size, radius * (1 + scale_amplitude))
    pad = ((start, 0),)
    return _Object(
        sprite=_sprite(rng, category, radius),
        centres=np.pad(centres, pad + ((0, 0),), mode="edge"),
        angles=np.pad(angles, pad, mode="edge"),
        scales=np.pad(scales, pad, mode="edge"),
        start=start, label=label, depth=depth, category=category,
    )


def _starts(rng: np.random.Generator, count: int, num_frames: int, entry_step: Optional[int]) -> list[int]:
    """First frame of each object: 0, or with `entry_step` a later multiple of it for some objects."""
    late = [] if entry_step is None else list(range(entry_step, num_frames, entry_step))
    if not late or count < 2:
        return [0] * count
    starts = [0] + [int(rng.choice(late)) if rng.random() < 0.5 else 0 for _ in range(count - 1)]
    if max(starts) == 0:
        starts[-1] = int(rng.choice(late))
    return starts


def _warp(obj: _Object, t: int, size: tuple[int, int]) -> np.ndarray:
    """The object's sprite placed in frame `t`: an (H, W, 4) RGBA image, transparent outside it."""
    side = obj.sprite.shape[0]
    centre = (side - 1) / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), float(obj.angles[t]), float(obj.scales[t]))
    matrix[:, 2] += obj.centres[t] - centre
    height, width = size
    return cv2.warpAffine(obj.sprite, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _visible_at_start(objects: list[_Object], size: tuple[int, int]) -> bool:
    """Whether every object shows at least a third of its area, unoccluded, on its first frame."""
    for obj in objects:
        own = _warp(obj, obj.start, size)[..., 3] >= 128
        hidden = np.zeros_like(own)
        for other in objects:
            if other.depth > obj.depth and other.start <= obj.start:
                hidden |= _warp(other, obj.start, size)[..., 3] >= 128
        area = own.sum()
        if area < 12 or (own & ~hidden).sum() < area / 3:
            return False
    return True


def _background(rng: np.random.Generator, num_frames: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A textured canvas larger than the frame, with muted clutter, and the (T, 2) pan offsets into it."""
    height, width = size
    speed = rng.uniform(0.2, 1.5) * min(size) / 100
    heading = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(heading), math.sin(heading)])
    travel = np.abs(velocity) * max(num_frames - 1, 0)
    canvas_shape = (height + math.ceil(travel[1]) + 2, width + math.ceil(travel[0]) + 2)
    first, second = _colour(rng, vivid=False), _colour(rng, vivid=False)
    weight = _smooth_noise(rng, canvas_shape, int(rng.integers(2, 6)))
    detail = _texture(rng, canvas_shape, vivid=False).astype(np.float32) - 128
    canvas = np.clip(first * (1 - weight) + second * weight + 0.35 * detail, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 5))):
        _paint_clutter(rng, canvas, min(size))
    start = np.where(velocity >= 0, 0.0, travel)
    offsets = start + velocity * np.arange(num_frames)[:, None]
    return canvas, offsets


def _paint_clutter(rng: np.random.Generator, canvas: np.ndarray, frame_side: int) -> None:
    """Paint an unlabelled muted textured shape into the background canvas, in place."""
    radius = rng.uniform(0.05, 0.2) * frame_side
    side = 2 * math.ceil(radius) + 5
    alpha = np.zeros((side, side), np.uint8)
    outline = _outline(rng, SHAPES[rng.integers(len(SHAPES))], radius) + (side - 1) / 2
    cv2.fillPoly(alpha, [np.round(outline).astype(np.int32)], 255)
    texture = _texture(rng, (side, side), vivid=False)
    top = int(rng.integers(0, max(1, canvas.shape[0] - side)))
    left = int(rng.integers(0, max(1, canvas.shape[1] - side)))
    region = canvas[top:top + side, left:left + side]
    inside = alpha[:region.shape[0], :region.shape[1]] > 0
    region[inside] = texture[:region.shape[0], :region.shape[1]][inside]


def _render(objects: list[_Object], canvas: np.ndarray, offset: np.ndarray, t: int,
            size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame `t`: the panned background with the objects pasted back to front, and its label map."""
    height, width = size
    pan = np.array([[1, 0, -offset[0]], [0, 1, -offset[1]]], dtype=np.float64)
    frame = cv2.warpAffine(canvas, pan, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    labels = np.zeros(size, np.uint8)
    for obj in objects:
        if t < obj.start:
            continue
        rgba = _warp(obj, t, size)
        inside = rgba[..., 3] >= 128
        frame[inside] = rgba[..., :3][inside]
        labels[inside] = obj.label
    return frame, labels


def _place_objects(rng: np.random.Generator, count: int, num_frames: int, size: tuple[int, int],
                   entry_step: Optional[int], object_scale: float = 1.0) -> list[_Object]:
    """Objects sorted back to front, redrawn until each is clearly visible on its first frame."""
    max_radius = min(size) * (0.35 if count <= 2 else 0.28 if count <= 4 else 0.2) * object_scale
    for _ in range(100):
        starts = _starts(rng, count, num_frames, entry_step)
        depths = rng.permutation(count)
        objects = [_make_object(rng, k + 1, int(depths[k]), starts[k], num_frames, size, max_radius)
                   for k in range(count)]
        objects.sort(key=lambda obj: obj.depth)
        if _visible_at_start(objects, size):
            return objects
    raise RuntimeError(f"could not place {count} visible objects in a {size[0]}x{size[1]} frame; "
                       "use a larger size or fewer objects")


def generate_video(rng: np.random.Generator, num_frames: int, size: tuple[int, int] = (96, 160),
                   max_objects: int = 3, min_objects: int = 1, entry_step: Optional[int] = None,
                   object_scale: float = 1.0) -> SyntheticVideo:
    """A video of 1..max_objects labelled objects; all start on frame 0 unless `entry_step` is given.

    With `entry_step` (5 for YouTubeVOS) objects after the first may first appear on a later multiple of it;
    at least one does when there are two objects or more and the video is long enough. `object_scale`
    multiplies the objects' sizes (e.g. to time inference against object size).
    """
    if num_frames < 1 or min(size) < 16 or not 1 <= min_objects <= max_objects <= 254:
        raise ValueError(f"invalid request: {num_frames} frames of size {size}, {min_objects}..{max_objects} objects")
    count = int(rng.integers(min_objects, max_objects + 1))
    objects = _place_objects(rng, count, num_frames, size, entry_step, object_scale)
    canvas, offsets = _background(rng, num_frames, size)
    rendered = [_render(objects, canvas, offsets[t], t, size) for t in range(num_frames)]
    categories = tuple(obj.category for obj in sorted(objects, key=lambda o: o.label))
    return SyntheticVideo(frames=np.stack([f for f, _ in rendered]), labels=np.stack([l for _, l in rendered]),
                          categories=categories)


def generate_image(rng: np.random.Generator, size: tuple[int, int] = (96, 160)) -> tuple[np.ndarray, np.ndarray]:
    """A static image with one salient object: (HxWx3 uint8 RGB, HxW uint8 mask with 1 on the object)."""
    video = generate_video(rng, 1, size, max_objects=1)
    return video.frames[0], (video.labels[0] > 0).astype(np.uint8)
