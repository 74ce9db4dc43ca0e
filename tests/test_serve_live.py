"""The web app's Live tab, run for real: a classifier of real footage served on 127.0.0.1, its page in headless
Chromium whose fake camera plays a real UCF101 clip (written as a .y4m file, looped by Chromium), the webcam
streamed to the server as a user would stream it, and the rolling label checked against a `RollingClassifier`
run directly on the same frames; then again with another clip and a CNN too slow for the frames it is sent.
Screenshots go to artifacts/screenshots/ (CI keeps them).

About 12 s a clip on 2 cores, after the session's classifier is trained (about 15 s, shared with test_watch)."""
import os, re, time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("gradio", reason="the `serve` extra is not installed (pip install video_classifier[serve])")
from conftest import SCENES
from video_classifier.predict import VideoClassifier
from video_classifier.serve import serve
from video_classifier.watch import RollingClassifier

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT/"artifacts"/"screenshots"
README_SHOT = ROOT/"nbs"/"images"/"live.png"  # rewritten only with UPDATE_SCREENSHOTS=1
FPS = 25  # the clips' frame rate, and the .y4m's


def write_y4m(path: Path, clip: Path) -> np.ndarray:
    "Every frame of `clip` as an uncompressed YUV 4:2:0 .y4m file, Chromium's fake camera; the RGB frames it holds."
    cap = cv2.VideoCapture(str(clip))
    frames = []
    ok, frame = cap.read()
    while ok: frames.append(frame); ok, frame = cap.read()
    cap.release()
    h, w = frames[0].shape[:2]
    yuv = [cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420) for f in frames]  # planes Y, U, V: 4:2:0, as the header says
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for planes in yuv: out.write(b"FRAME\n" + planes.tobytes())
    return np.stack([cv2.cvtColor(p, cv2.COLOR_YUV2RGB_I420) for p in yuv])  # what the camera shows


class SlowCNN:
    "A feature extractor that takes `seconds` longer a call: a CPU that cannot keep up with the frames it is sent."
    def __init__(self, cnn, seconds: float): self.cnn, self.seconds = cnn, seconds
    def predict_on_batch(self, x):
        time.sleep(self.seconds)
        return self.cnn.predict_on_batch(x)


def rolling_decisions(classifier, frames: np.ndarray, loops: int = 3) -> list:
    "The decisions of a `RollingClassifier` on `frames` looped `loops` times at 25 fps, as Chromium plays the file."
    rolling = RollingClassifier(classifier, top_k=3)
    looped = np.concatenate([frames] * loops)
    return [d for d in (rolling.add(f, i / FPS) for i, f in enumerate(looped)) if d is not None]


def _about(page) -> dict:
    "The Live tab's line about the stream, read into numbers: decision, its stream time, latency, probability."
    text = page.locator("#live-about").inner_text()
    m = re.search(r"(\w+) \((\d+)%\), decision (\d+): the ([\d.]+) s up to ([\d.]+) s of the stream; "
                  r"latency ([\d.]+) s", text)
    assert m, text
    return dict(label=m[1], p=int(m[2]) / 100, n=int(m[3]), span=float(m[4]), time=float(m[5]), latency=float(m[6]),
                text=text)


def _wait_for_decision(page, after: int, timeout: float = 30) -> dict:
    "The line once its decision number is past `after`."
    page.wait_for_function("n => { const m = document.querySelector('#live-about').innerText.match(/decision (\\d+):/);"
                           " return m && +m[1] > n }", arg=after, timeout=timeout * 1000)
    return _about(page)


@pytest.mark.parametrize("scene, slow", [("ApplyEyeMakeup", 0.0),  # two cameras, two labels: it follows the camera
                                         ("Shotput", 0.4)])  # ...and a CNN of 0.4 s a frame, sent a frame every 0.12 s
def test_live_tab_labels_the_webcam_as_it_plays(launch_browser, scenes_classifier, scene, slow, tmp_path):
    shown = write_y4m(tmp_path/f"{scene}.y4m", SCENES[scene])
    direct = rolling_decisions(scenes_classifier, shown)
    assert {d.label for d in direct} == {scene}, {d.label for d in direct}  # every window of the looped clip: one label
    camera = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              f"--use-file-for-fake-video-capture={tmp_path/f'{scene}.y4m'}")
    clf = scenes_classifier
    if slow: clf = VideoClassifier(clf.model, clf.class_vocab, clf.extractor, feature_extractor=SlowCNN(
        clf.feature_extractor, slow), clip_seconds=clf.clip_seconds)
    with serve(clf, inline=False, block=False, live_seconds=60) as live_server, launch_browser(*camera) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 640})
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(live_server.url, wait_until="load")
        page.get_by_role("tab", name="Live").click()
        page.locator("#webcam [title='grant webcam access'] button").click()
        page.wait_for_function("() => document.querySelector('#webcam video').videoWidth > 0", timeout=30_000)
        page.locator("#webcam button.capture-button").click()  # Record: the stream starts
        started = time.monotonic()
        first = _wait_for_decision(page, 0)
        later = _wait_for_decision(page, first["n"] + 1)  # two strides on
        wall = time.monotonic() - started
        top = page.locator("#live-labels h2").first.inner_text().strip()  # the Label component's heading: its top label
        page.wait_for_timeout(300)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS/f"live-{scene}.png"), full_page=True)
        if os.environ.get("UPDATE_SCREENSHOTS") and scene == "ApplyEyeMakeup":  # the README's picture only when asked
            page.screenshot(path=str(README_SHOT), full_page=True)
    assert first["label"] == later["label"] == top == scene, (first, later, top)
    p_direct = [d.probability for d in direct]
    for d in (first, later):  # the frames came through the browser's JPEG: a probability near the direct windows
        assert min(p_direct) - 0.1 <= d["p"] <= max(p_direct) + 0.1, (d["text"], min(p_direct), max(p_direct))
    assert later["n"] >= first["n"] + 2 and later["time"] > first["time"] + 1, (first, later)  # it rolls on
    assert later["time"] > wall - 3, (later, wall)  # in real time: the stream's clock keeps up, no growing lag
    assert 0 < first["latency"] < 2 and 0 < later["latency"] < 2, (first, later)
    assert "0 dropped" in later["text"], later["text"]  # none waited for the model: nothing else used it
    grid = RollingClassifier(clf)  # the app's: a frame every `interval` seconds, windows of `window` seconds
    received, sent = int(re.search(r"frames: (\d+) received", later["text"])[1]), wall / (grid.interval / 2)
    print(f"\nlive, {scene}, CNN {slow:g} s slower: {wall:.1f} s, about {sent:.0f} frames sent: {later['text']}")
    window = grid.window
    if slow:  # the frames the CNN had no time for were never taken, nor queued; the window's frames lie further apart
        assert received < 0.6 * sent and later["span"] > window + 0.2, (received, sent, later)
    else: assert received > 0.5 * sent and later["span"] == pytest.approx(window, abs=0.15), (received, sent, later)
    external = [u for u in requested if not re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", u)]
    assert not external, f"the page loaded from outside the app: {external[:5]}"
