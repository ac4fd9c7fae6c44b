"""The browser tool (Gradio): open a video, mark objects, propagate, correct a frame, propagate again, export.

Every action goes through `stcn.session.AnnotationSession` (the same propagation core and API as the
evaluation scripts); this module only lays out the page and turns its events into session calls. Bad input
becomes a message in the page, never a stack trace or a dead server.
"""
import functools
import inspect
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import gradio as gr
import numpy as np
import torch

import stcn
from stcn.api import Segmenter
from stcn.session import AnnotationSession, FrameStore
from util.fileio import InputError
from util.imageio import DAVIS_PALETTE, read_mask

OBJECT_COLOURS = 8  # brush colours offered: background (erase) and objects 1..8
UPDATE_SECONDS = 0.5  # how often the page is updated while propagating
log = logging.getLogger("stcn.app")


def brush_colours(palette: list[int] = DAVIS_PALETTE) -> list[str]:
    """Brush colours: label 0 (background: paints objects away) and the objects' palette colours."""
    return [f"rgb({palette[3 * i]}, {palette[3 * i + 1]}, {palette[3 * i + 2]})" for i in range(OBJECT_COLOURS + 1)]


def labels_from_strokes(strokes: np.ndarray, current: np.ndarray, palette: list[int] = DAVIS_PALETTE) -> np.ndarray:
    """The frame's mask after painting: where the stroke layer (H, W, 4 RGBA) is opaque, the label whose palette
    colour is nearest the stroke's; elsewhere the current mask."""
    if strokes.shape[:2] != current.shape:
        raise InputError(f"the painting is {strokes.shape[1]}x{strokes.shape[0]} but the frame is "
                         f"{current.shape[1]}x{current.shape[0]}")
    colours = np.array(palette[:3 * (OBJECT_COLOURS + 1)], dtype=np.float32).reshape(-1, 3)
    painted = strokes[..., 3] >= 128
    distances = ((strokes[painted][:, None, :3].astype(np.float32) - colours[None]) ** 2).sum(axis=2)
    labels = current.copy()
    labels[painted] = distances.argmin(axis=1).astype(np.uint8)
    return labels


def default_weights(root: Path) -> Optional[Path]:
    """The network `make demo` trained, when there is one, else the released weights under saves/."""
    summary = root / "demo_output" / "demo_summary.json"
    if summary.is_file():
        weights = summary.parent / json.loads(summary.read_text())["weights"]
        if weights.is_file():
            return weights
    released = root / "saves" / "stcn.pth"
    return released if released.is_file() else None


def _in_page(handler: Callable, outputs: int, status: Optional[int]) -> Callable:
    """`handler` for an event with `outputs` outputs: a failure becomes a message in the page (a warning, and
    the status line at position `status`), the other outputs keep what they show and the server stays up.
    Bad input (InputError, ValueError) is told as it is; anything else is logged on the server too."""
    def failed(error: Exception):
        if not isinstance(error, (InputError, ValueError)):
            log.exception("unexpected error in %s", handler.__name__)
        message = str(error) if isinstance(error, (InputError, ValueError)) else f"{type(error).__name__}: {error}"
        gr.Warning(message)
        values = [gr.skip()] * outputs
        if status is not None:
            values[status] = f"**Error:** {message}"
        return values[0] if outputs == 1 else tuple(values)

    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every failure becomes a message, not a dead page
                yield failed(error)
        return streaming

    @functools.wraps(handler)
    def single(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            return failed(error)
    return single


@dataclass
class AppConfig:
    """What scripts/app.py's flags set: the weights offered first, device, where sessions write, and the
    propagation settings (Segmenter.segment's keyword arguments)."""

    weights: Optional[Path]
    device: str = "auto"
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "stcn_app")
    settings: dict = field(default_factory=dict)


class AnnotationApp:
    """One AnnotationSession per browser tab (Gradio's session hash); networks loaded once per weights file."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.sessions: dict[str, AnnotationSession] = {}
        self.networks: dict[tuple[str, str], Segmenter] = {}

    def _segmenter(self, weights: str, device: str) -> Segmenter:
        path = Path(weights.strip()) if weights and weights.strip() else None
        if path is None:
            raise InputError("give the weights: a .pth file (the released stcn.pth or a checkpoint trained here)")
        if not path.is_file():
            raise InputError(f"{path}: no such weights file")
        key = (str(path.resolve()), device)
        if key not in self.networks:
            self.networks[key] = stcn.load(path, device=None if device == "auto" else device)
        return self.networks[key]

    def _session(self, request: gr.Request) -> AnnotationSession:
        session = self.sessions.get(request.session_hash)
        if session is None:
            raise InputError("open a video first")
        return session

    # ---- event handlers ------------------------------------------------------------------------------
    def open_video(self, uploaded, server_path: str, weights: str, device: str, request: gr.Request):
        tab = self.config.workdir / request.session_hash
        tab.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="video_", dir=tab))  # a video's own: the last one stays intact
        try:
            source = _source(uploaded, server_path, folder / "frames")
            frames = FrameStore(source, folder / "decoded")
            session = AnnotationSession(self._segmenter(weights, device), frames, folder / "session",
                                        **self.config.settings)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.close(request)
        self.sessions[request.session_hash] = session
        status = (f"Opened **{frames.name}**: {len(frames)} frames of {frames.width}x{frames.height}. Mark the "
                  f"objects on a frame (paint, or upload its mask), then propagate.")
        return status, gr.update(maximum=len(frames) - 1, value=0, interactive=True), _editor(session, 0)

    def close(self, request: gr.Request) -> None:
        """Forget the tab's session (a new video, or the tab closed): its propagation stops, its folder goes."""
        session = self.sessions.pop(request.session_hash, None)
        if session is not None:
            session.stop()
            shutil.rmtree(session.folder.parent, ignore_errors=True)

    def show_frame(self, index: float, request: gr.Request):
        session = self._session(request)
        index = int(index)
        marked = " (marked)" if index in session.marked else ""
        return _editor(session, index), f"Frame {index}{marked}."

    def refresh_frame(self, index: float, request: gr.Request) -> dict:
        return _editor(self._session(request), int(index))

    def apply_painting(self, index: float, editor: dict, request: gr.Request):
        session = self._session(request)
        index = int(index)
        layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
        if not layers:
            raise InputError("nothing painted on this frame: paint with a brush colour first")
        labels = session.mask(index)
        for layer in layers:
            labels = labels_from_strokes(np.asarray(layer), labels, session.palette)
        session.mark(index, labels)
        return _editor(session, index), f"Frame {index} marked from the painting: objects {_ids(labels)}."

    def upload_mask(self, index: float, mask_file, request: gr.Request):
        session = self._session(request)
        index = int(index)
        if mask_file is None:
            raise InputError("choose a mask PNG first")
        path = Path(_file_path(mask_file))
        labels = read_mask(path)
        session.mark(index, labels)
        return _editor(session, index), f"Frame {index} marked from {path.name}: objects {_ids(labels)}.", None

    def propagate(self, index: float, request: gr.Request, progress=gr.Progress()):
        session = self._session(request)
        session.start(int(index))
        yield from self._advance(session, progress)

    def continue_propagation(self, request: gr.Request, progress=gr.Progress()):
        session = self._session(request)
        if not session.propagating:
            raise InputError("no propagation to continue: propagate from a marked frame")
        yield from self._advance(session, progress)

    def stop(self, request: gr.Request) -> str:
        session = self.sessions.get(request.session_hash)
        if session is not None:
            session.stop()
        return "Stopping after the current frame..."

    def _advance(self, session: AnnotationSession, progress) -> Iterator[tuple]:
        total = len(session.frames) - 1
        done, last_update, last = 0, 0.0, None
        for last in session.steps():
            done += 1
            progress((done, total), desc="propagating", unit="frames")
            if time.monotonic() - last_update > UPDATE_SECONDS:
                last_update = time.monotonic()
                yield f"Propagating: frame {last} done ({done} so far).", session.overlay(last)
        ended = "Paused: press Continue to go on." if session.propagating else "Propagation done"
        preview = None if last is None else session.overlay(last)
        yield f"{ended} ({done} frames segmented).", preview

    def export_masks(self, request: gr.Request) -> tuple[str, str]:
        session = self._session(request)
        path = session.export_zip(session.folder / "export" / f"{session.frames.name}_masks.zip")
        return str(path), f"Exported the masks of {len(session.frames)} frames: {path.name}."

    def export_overlay(self, request: gr.Request) -> tuple[str, str]:
        session = self._session(request)
        path = session.export_overlay(session.folder / "export" / f"{session.frames.name}_overlay.mp4")
        return str(path), f"Exported the overlay video: {path.name}."

    # ---- the page ------------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        with gr.Blocks(title="STCN annotation") as page:
            gr.Markdown("## STCN: segment your own video\nOpen a video, mark the objects on a frame, propagate; "
                        "correct any frame and propagate again from it; export the masks.")
            with gr.Row():
                uploaded = gr.File(label="Video file, or the frames of one (upload)", file_count="multiple",
                                   elem_id="video_upload")
                with gr.Column():
                    server_path = gr.Textbox(label="...or a video file or frame folder on the server",
                                             elem_id="server_path")
                    weights = gr.Textbox(label="Weights (.pth)", value=str(self.config.weights or ""),
                                         elem_id="weights")
                    device = gr.Radio(devices, value=self.config.device if self.config.device in devices else "auto",
                                      label="Device")
                    open_button = gr.Button("Open video", variant="primary")
            status = gr.Markdown("Open a video to start.", elem_id="status")
            frame = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False, elem_id="frame")
            with gr.Row():
                editor = gr.ImageEditor(label="Frame and its mask: paint objects (black paints them away)",
                                        type="numpy", image_mode="RGBA", format="png", sources=(), transforms=(),
                                        layers=False, brush=gr.Brush(colors=brush_colours(), default_color=brush_colours()[1],
                                                       color_mode="fixed"),
                                        elem_id="editor")
                with gr.Column():
                    paint_button = gr.Button("Use the painting as this frame's mask")
                    mask_file = gr.File(label="...or upload this frame's mask (palette or label PNG)",
                                        file_types=[".png"], elem_id="mask_upload")
                    preview = gr.Image(label="Last frame segmented", interactive=False, elem_id="preview")
            with gr.Row():
                propagate_button = gr.Button("Propagate from this frame", variant="primary")
                stop_button = gr.Button("Stop")
                continue_button = gr.Button("Continue")
            with gr.Row():
                zip_button = gr.Button("Export masks (zip)")
                video_button = gr.Button("Export overlay video")
                exported = gr.File(label="Exported", elem_id="exported")

            def on(event, handler, inputs, outputs, **options):
                """Bind `handler` through _in_page; a failure's message goes to the status line if it is an output."""
                where = outputs.index(status) if status in outputs else None
                return event(_in_page(handler, len(outputs), where), inputs, outputs, **options)

            on(open_button.click, self.open_video, [uploaded, server_path, weights, device], [status, frame, editor])
            on(frame.change, self.show_frame, [frame], [editor, status])
            on(paint_button.click, self.apply_painting, [frame, editor], [editor, status])
            on(mask_file.upload, self.upload_mask, [frame, mask_file], [editor, status, mask_file])
            running = on(propagate_button.click, self.propagate, [frame], [status, preview])
            resumed = on(continue_button.click, self.continue_propagation, None, [status, preview])
            on(stop_button.click, self.stop, None, [status], queue=False)
            for event in (running, resumed):  # the frame on show gets its new mask
                on(event.then, self.refresh_frame, [frame], [editor])
            on(zip_button.click, self.export_masks, None, [exported, status])
            on(video_button.click, self.export_overlay, None, [exported, status])
            page.unload(self.close)
        return page


def _editor(session: AnnotationSession, index: int) -> dict:
    """The editor's value: the frame with its mask blended in as the background, no strokes yet."""
    return {"background": session.overlay(index), "layers": [], "composite": None}


def _ids(labels: np.ndarray) -> str:
    ids = [int(i) for i in np.unique(labels) if i != 0]
    return ", ".join(map(str, ids)) if ids else "none (all background)"


def _file_path(item) -> str:
    return item if isinstance(item, str) else getattr(item, "name", item["path"] if isinstance(item, dict) else item)


def _source(uploaded, server_path: str, folder: Path) -> Path:
    """The video to open: an uploaded video file, uploaded frames (copied into `folder`), or a server path."""
    files = [Path(_file_path(item)) for item in uploaded or []]
    if server_path and server_path.strip():
        if files:
            raise InputError("give an upload or a server path, not both")
        return Path(server_path.strip()).expanduser()
    if not files:
        raise InputError("upload a video file (or its frames), or give a path on the server")
    if len(files) == 1 and files[0].suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        return files[0]
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def serve(config: AppConfig, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the tool until interrupted (a cluster user forwards the port of a GPU node)."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    page = AnnotationApp(config).build()
    page.queue(default_concurrency_limit=4)
    page.launch(server_name=host, server_port=port, allowed_paths=[str(config.workdir.resolve())],
                show_error=True, inbrowser=False)
