"""The browser tool as a person uses it: headless Chromium (Debian's package) driven by Playwright opens the
page served by scripts/app.py, uploads a video and its first mask, propagates, corrects a frame by uploading
its mask, propagates again and downloads the zip. A screenshot of the page is kept with the test's output
(and copied to $STCN_SCREENSHOTS when set: the README's picture comes from there)."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import cv2
import numpy as np
import pytest
from eval_helpers import ROOT

from dataset.synthetic_layouts import SyntheticSpec, write_layout
from util.imageio import list_images, read_image, read_indexed_png, read_mask, write_indexed_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt install chromium)")
# Chromium as root, in a sandbox without network: no sandbox, no GPU, no background connections
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(weights, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "app.py"), "--port", str(port), "--model",
                               str(weights), "--workdir", str(tmp_path / "work")], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _clip(tmp_path):
    """A 10-frame mp4 of a synthetic video, its first mask and the true mask of frame 5."""
    root = tmp_path / "data"
    write_layout("davis", root, SyntheticSpec(videos=1, frames=10, size=(64, 96), max_objects=2, seed=9,
                                              progress=False))
    frames = next((root / "JPEGImages" / "480p").iterdir())
    masks = sorted(next((root / "Annotations" / "480p").iterdir()).iterdir())
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for image in list_images(frames):
        writer.write(cv2.cvtColor(read_image(image), cv2.COLOR_RGB2BGR))
    writer.release()
    shutil.copy(masks[0], tmp_path / "first.png")
    shutil.copy(masks[5], tmp_path / "frame5.png")
    return video, tmp_path / "first.png", tmp_path / "frame5.png"


def _paint_stroke(page, colour: str) -> None:
    """Pick the brush colour `colour` and drag a stroke across the middle of the frame."""
    editor = page.locator("#editor")
    editor.get_by_role("button", name="Color").click()
    editor.locator(f"button.color[style*='{colour}']").click()
    page.mouse.click(2, 2)  # closes the colour menu
    box = editor.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 40, y - 10)
    page.mouse.down()
    for step in range(9):
        page.mouse.move(x - 40 + 10 * step, y - 10 + 2 * step)
    page.mouse.up()


def _expected(weights, video, first, correction, tmp_path):
    """The masks of the same steps through the session, in this process."""
    import stcn
    from stcn.session import AnnotationSession, FrameStore
    session = AnnotationSession(stcn.load(weights, device="cpu"), FrameStore(video, tmp_path / "frames"),
                                tmp_path / "session")
    for index, mask in ((0, first), (5, correction)):
        session.mark(index, mask)
        session.start(index)
        list(session.steps())
    return [session.mask(i) for i in range(10)]


def test_browser_mark_propagate_correct_propagate_and_export(served, weights, tmp_path):
    video, first, correction = _clip(tmp_path)
    status = "#status"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100}, accept_downloads=True)
        expect = sync_api.expect
        try:
            page.goto(served)
            expect(page.get_by_role("button", name="Open video")).to_be_visible(timeout=WAIT_MS)
            page.locator("#video_upload input[type=file]").set_input_files(str(video))
            expect(page.locator("#video_upload")).to_contain_text("clip.mp4", timeout=WAIT_MS)
            page.get_by_role("button", name="Open video").click()
            expect(page.locator(status)).to_contain_text("Opened clip: 10 frames of 96x64", timeout=WAIT_MS)

            page.locator("#mask_upload input[type=file]").set_input_files(str(first))
            expect(page.locator(status)).to_contain_text("Frame 0 marked from first.png: objects 1.", timeout=WAIT_MS)
            _paint_stroke(page, "rgb(0, 128, 0)")  # a second object, in object 2's colour
            page.get_by_role("button", name="Use the painting as this frame's mask").click()
            expect(page.locator(status)).to_contain_text("Frame 0 marked from the painting: objects 1, 2.",
                                                         timeout=WAIT_MS)
            page.get_by_role("button", name="Propagate from this frame").click()
            expect(page.locator(status)).to_contain_text("Propagation done (9 frames segmented)", timeout=WAIT_MS)

            frame_box = page.locator("#frame input[type=number]")
            frame_box.fill("5")
            frame_box.press("Enter")
            expect(page.locator(status)).to_contain_text("Frame 5.", timeout=WAIT_MS)
            page.locator("#mask_upload input[type=file]").set_input_files(str(correction))
            expect(page.locator(status)).to_contain_text("Frame 5 marked from frame5.png", timeout=WAIT_MS)
            page.get_by_role("button", name="Propagate from this frame").click()
            # forward over frames 6-9, backward over 4-1
            expect(page.locator(status)).to_contain_text("Propagation done (8 frames segmented)", timeout=WAIT_MS)

            page.get_by_role("button", name="Export masks (zip)").click()
            link = page.locator("#exported a").first
            expect(link).to_be_visible(timeout=WAIT_MS)
            with page.expect_download() as download:
                link.click()
            download.value.save_as(str(tmp_path / "downloaded.zip"))
        finally:
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            browser.close()
    if os.environ.get("STCN_SCREENSHOTS"):
        shutil.copy(tmp_path / "app.png", os.environ["STCN_SCREENSHOTS"])

    with zipfile.ZipFile(tmp_path / "downloaded.zip") as archive:
        assert archive.namelist() == [f"clip/{i:05d}.png" for i in range(10)]
        archive.extractall(tmp_path / "unzipped")
    got = [read_indexed_png(tmp_path / "unzipped" / "clip" / f"{i:05d}.png")[0] for i in range(10)]
    given = read_mask(first)
    painted = got[0] == 2  # the stroke: object 2 where it went, the uploaded mask everywhere else
    assert 20 < painted.sum() < given.size / 2 and np.array_equal(got[0][~painted], given[~painted])
    assert np.array_equal(got[5], read_mask(correction))
    expected = _expected(weights, video, got[0], read_mask(correction), tmp_path)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))


def test_bad_input_is_a_message_in_the_page(served, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(served)
            sync_api.expect(page.get_by_role("button", name="Open video")).to_be_visible(timeout=WAIT_MS)
            page.locator("#server_path textarea, #server_path input").first.fill(str(tmp_path / "broken.mp4"))
            page.get_by_role("button", name="Open video").click()
            sync_api.expect(page.locator("#status")).to_contain_text("broken.mp4: cannot read the video",
                                                                     timeout=WAIT_MS)
            page.get_by_role("button", name="Propagate from this frame").click()  # before any video
            sync_api.expect(page.locator("#status")).to_contain_text("open a video first", timeout=WAIT_MS)
            video, _, _ = _clip(tmp_path)
            page.locator("#server_path textarea, #server_path input").first.fill(str(video))
            page.get_by_role("button", name="Open video").click()
            sync_api.expect(page.locator("#status")).to_contain_text("Opened clip", timeout=WAIT_MS)
            write_indexed_png(tmp_path / "small.png", np.ones((32, 48), np.uint8))
            page.locator("#mask_upload input[type=file]").set_input_files(str(tmp_path / "small.png"))
            sync_api.expect(page.locator("#status")).to_contain_text("mask is 48x32 but its frame is 96x64",
                                                                     timeout=WAIT_MS)
            assert "Traceback" not in page.content()
            page.reload()  # the server is still up
            sync_api.expect(page.get_by_role("button", name="Open video")).to_be_visible()
        finally:
            browser.close()
