"""The demo's pictures: the trained network's masks beside the ground truth, as an animated GIF."""
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from util.fileio import atomic_path
from util.imageio import DAVIS_PALETTE, read_image, read_indexed_png


def overlay_gif(data: Path, masks: Path, path: Path, videos: int = 4, scale: int = 2) -> None:
    """An animated GIF: one row per video, the trained network's masks | the ground truth, over the frames."""
    palette = np.array(DAVIS_PALETTE, dtype=np.uint8).reshape(-1, 3)
    names = (data / "ImageSets" / "2017" / "val.txt").read_text().split()[:videos]
    rows = []
    for name in names:
        frames = sorted((data / "JPEGImages" / "480p" / name).glob("*.jpg"))
        row = []
        for frame in frames:
            image = read_image(frame)
            predicted = read_indexed_png(masks / name / f"{frame.stem}.png")[0]
            truth = read_indexed_png(data / "Annotations" / "480p" / name / f"{frame.stem}.png")[0]
            row.append(np.concatenate([_blend(image, predicted, palette), _blend(image, truth, palette)], axis=1))
        rows.append(row)
    length = min(len(row) for row in rows)
    pictures = []
    for t in range(length):
        grid = np.concatenate([row[t] for row in rows], axis=0)
        grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        pictures.append(Image.fromarray(grid))
    with atomic_path(path) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=200, loop=0)


def _blend(image: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    inside = labels > 0
    out[inside] = 0.45 * out[inside] + 0.55 * palette[labels[inside]]
    edges = cv2.morphologyEx((labels > 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = 255
    return out.astype(np.uint8)

