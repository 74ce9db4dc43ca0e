"""The web app (`video_classifier.serve`), run for real: a small trained classifier served on 127.0.0.1, its API called
with `gradio_client`, its page driven in headless Chromium (the `playwright` package, Debian's chromium), and a
bounded load test on a server in its own process (run with -s to see its figures)."""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

gradio = pytest.importorskip("gradio", reason="the `serve` extra is not installed (pip install video_classifier[serve])")
from gradio_client import Client, handle_file

from video_classifier.data import make_synthetic_dataset, write_video
from video_classifier.frames import load_video, video_info
from video_classifier.pipeline import train_classifier
from video_classifier.predict import load_classifier
from video_classifier.serve import serve

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT/"nbs"/"images"/"serve.png"
CLASSES = ("Growing", "Shrinking", "FadingIn", "FadingOut")
MAX_MB = 1  # the test server's upload limit: the clips are far smaller, the refused file larger
WEIGHTS = ROOT.parent/"shared"/"weights"/"mobilenet_2_5_224_tf_no_top.h5"  # small real ImageNet weights, where the machine has them


# ---------------------------------------------------------------- a trained classifier and its server

@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    "A small classifier trained on synthetic clips (MobileNet 0.25 at 96 px, ImageNet's weights if here), saved; and its test clips."
    d = tmp_path_factory.mktemp("serve")
    data = make_synthetic_dataset(d/"data", videos_per_class=10, test_per_class=3, seed=0, classes=CLASSES)
    train_classifier(data, d/"classifier", backbone="mobilenet", alpha=0.25, weights=WEIGHTS if WEIGHTS.is_file() else None,
                     img_size=96, max_seq_length=8, epochs=60, batch_size=16, progress=False)
    return d/"classifier", sorted((data/"test").glob("*.avi"))


@pytest.fixture(scope="module")
def classifier(bundle):
    return load_classifier(bundle[0])


def _expected(classifier, path) -> list[tuple[str, float]]:
    "The ranked labels of the classifier itself, in this process: what every answer must be."
    return classifier.rank(classifier.read_frames(path), 4)


@pytest.fixture(scope="module")
def examples(bundle, tmp_path_factory):
    "A folder of two example clips for the app's list."
    folder = tmp_path_factory.mktemp("examples")
    for clip in bundle[1][:2]: shutil.copy(clip, folder)
    return folder


@pytest.fixture(scope="module")
def server(classifier, examples):
    "The app on 127.0.0.1, closed (uploads folder deleted) after the module, whatever happens."
    srv = serve(classifier, examples=examples, max_upload_mb=MAX_MB, inline=False, block=False)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def _files(folder: Path) -> list[Path]: return [p for p in folder.rglob("*") if p.is_file()]


def _ranked(label_output: dict) -> list[tuple[str, float]]:
    return [(c["label"], c["confidence"]) for c in label_output["confidences"]]


# ---------------------------------------------------------------- the API

def test_listens_on_loopback_only(server):
    assert server.url.startswith("http://127.0.0.1:"), server.url
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    others = {a.address for addrs in __import__("psutil").net_if_addrs().values() for a in addrs
              if a.family == socket.AF_INET and not a.address.startswith("127.")}
    for address in others:  # the machine's other addresses: nothing listens there
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"the app answers on {address}:{port}"


def test_answers_as_the_classifier_and_keeps_no_upload(server, client, classifier, bundle):
    for clip in bundle[1][:4]:
        labels, about, gif, importance, timeline, segments, cleared = client.predict(handle_file(str(clip)), None, api_name="/classify")
        want = _expected(classifier, clip)
        assert [l for l, _ in _ranked(labels)] == [l for l, _ in want], (clip.name, labels, want)
        np.testing.assert_allclose([p for _, p in _ranked(labels)], [p for _, p in want], atol=1e-4)
        assert about.startswith(f"**{clip.name}**: {want[0][0]}"), about
        assert gif.startswith('<img src="data:image/gif;base64,R0lGOD'), gif[:80]  # "GIF8" in base64
        assert importance.startswith('<img src="data:image/png;base64,iVBOR'), importance[:80]  # a PNG: the frame-importance plot
        assert timeline == "" and cleared is None  # a short clip has no timeline plot; the upload field is emptied
        (start, end, label, p, windows), = segments["data"]  # its one segment: the whole clip, with the clip's label
        info = video_info(clip)
        assert (start, label, windows) == (0, want[0][0], 1), segments
        assert end == pytest.approx(info.frames / info.fps, abs=0.006), segments
        assert p == pytest.approx(want[0][1], abs=6e-4), (p, want)  # shown to 3 decimals
        assert _files(server.cache) == [], f"uploads left after answering: {_files(server.cache)}"


def test_example_is_classified_and_kept(server, client, classifier, examples):
    name = sorted(p.name for p in examples.iterdir())[0]
    labels, about, *_ = client.predict(None, name, api_name="/classify")
    assert labels["label"] == _expected(classifier, examples/name)[0][0] and about.startswith(f"**{name}**")
    assert (examples/name).is_file()  # the app's own example is no upload: it stays


@pytest.mark.parametrize("name, content, message", [
    ("notes.avi", b"not a video at all", "notes.avi: OpenCV cannot open it as a video"),
    ("empty.mp4", b"", "empty.mp4: empty file (0 bytes)"),
    ("cut.avi", None, "cut.avi:"),  # the first 4 kB of a real clip: a truncated video
])
def test_bad_upload_is_named_and_the_server_goes_on(server, client, classifier, bundle, tmp_path, name, content, message):
    bad = tmp_path/name
    bad.write_bytes(content if content is not None else bundle[1][0].read_bytes()[:4096])
    with pytest.raises(Exception) as e: client.predict(handle_file(str(bad)), None, api_name="/classify")
    assert message in str(e.value) and str(server.cache) not in str(e.value), str(e.value)  # its name, not the server's path
    assert _files(server.cache) == []
    labels, *_ = client.predict(handle_file(str(bundle[1][1])), None, api_name="/classify")  # still serving
    assert labels["label"] == _expected(classifier, bundle[1][1])[0][0]


def test_an_upload_that_crashes_the_decoder_is_refused_and_the_server_goes_on(server, client, classifier, bundle, tmp_path, monkeypatch):
    "An upload is decoded first in a process of its own: a decoder crash there is that upload's error, not the server's end."
    import _crashing_reader, video_classifier.serve as app_module
    monkeypatch.setattr(app_module, "load_video", _crashing_reader.load_video_or_crash)  # what the reader process runs
    bad = tmp_path/"crash.avi"; bad.write_bytes(bundle[1][0].read_bytes())
    with pytest.raises(Exception) as e: client.predict(handle_file(str(bad)), None, api_name="/classify")
    assert "crash.avi: the decoder crashed" in str(e.value) and "SIGSEGV" in str(e.value), str(e.value)
    assert _files(server.cache) == []
    labels, *_ = client.predict(handle_file(str(bundle[1][1])), None, api_name="/classify")  # still serving
    assert labels["label"] == _expected(classifier, bundle[1][1])[0][0]


def test_nothing_to_classify_says_so(client):
    with pytest.raises(Exception, match="Upload a video clip, or pick an example"): client.predict(None, None, api_name="/classify")


def test_too_big_upload_is_refused(server, client, tmp_path):
    big = tmp_path/"big.avi"
    big.write_bytes(os.urandom(MAX_MB * 2**20 + 1))
    import httpx
    with open(big, "rb") as f:  # the server refuses it while it arrives, whatever the client
        r = httpx.post(server.url + "gradio_api/upload", files={"files": (big.name, f)}, timeout=30)
    assert r.status_code == 413 and "maximum allowed size" in r.text, (r.status_code, r.text)
    with pytest.raises(ValueError, match="exceeds the maximum file size"): client.predict(handle_file(str(big)), None, api_name="/classify")
    assert _files(server.cache) == []


def test_identical_uploads_at_once(server, classifier, bundle):
    "Clients sending the same bytes together share one upload in Gradio's cache: each gets its answer, none an error."
    clip, url = bundle[1][2], server.url
    def one(_):
        return Client(url, verbose=False).predict(handle_file(str(clip)), None, api_name="/classify")[0]["label"]
    with ThreadPoolExecutor(6) as pool: labels = list(pool.map(one, range(6)))
    assert labels == [_expected(classifier, clip)[0][0]] * 6, labels
    assert _files(server.cache) == []


def test_long_upload_gets_a_timeline(server, client, bundle, tmp_path):
    "A clip over two training clips long (the default window is 5 s) gets the timeline plot and its segments."
    frames = np.concatenate([load_video(c, max_frames=0) for c in bundle[1][:3] for _ in range(2)])  # about 6 x 3.5 s
    long_clip = write_video(tmp_path/"long.avi", frames, fps=25)
    assert long_clip.stat().st_size < MAX_MB * 2**20
    labels, about, gif, importance, timeline, segments, _ = client.predict(handle_file(str(long_clip)), None, api_name="/classify")
    assert timeline.startswith('<img src="data:image/png;base64,'), timeline[:80]
    assert segments["headers"][:4] == ["start", "end", "label", "probability"] and len(segments["data"]) >= 1, segments
    assert {row[2] for row in segments["data"]} <= set(CLASSES)
    assert _files(server.cache) == []


# ---------------------------------------------------------------- the page, in Chromium

@pytest.fixture
def page(launch_browser, server):
    "A headless Chromium page on the app, recording every URL it requests."
    with launch_browser() as browser:
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.requested = []
        pg.on("request", lambda r: pg.requested.append(r.url))
        pg.goto(server.url, wait_until="load")  # not "networkidle": the page keeps Gradio's heartbeat open (`unload`)
        pg.wait_for_selector("#upload input[type=file]", state="attached")
        yield pg


def _upload_and_classify(page, path: Path):
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("n => document.querySelector('#upload').innerText.includes(n)", arg=path.stem, timeout=30_000)  # uploaded
    page.get_by_role("button", name="Classify").click()


def test_page_classifies_an_upload_offline(page, server, classifier, bundle, tmp_path):
    clip = bundle[1][0]
    want = _expected(classifier, clip)[0][0]
    _upload_and_classify(page, clip)
    page.wait_for_function("t => document.querySelector('#about') && document.querySelector('#about').innerText.includes(t)",
                           arg=clip.name, timeout=60_000)
    top = page.locator("#labels h2").first.inner_text().strip()  # the Label component's heading: its top label
    assert top == want, (top, want)
    for panel in ("gif", "importance"):
        loaded = page.evaluate("p => { const i = document.querySelector('#' + p + ' img'); return i && i.complete && i.naturalWidth }", panel)
        assert loaded, f"the {panel} image did not render"
    page.wait_for_timeout(500)
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path/SCREENSHOT.name  # the README's picture only when asked
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    external = [u for u in page.requested if not re.match(r"(http://127\.0\.0\.1:\d+/|data:|blob:)", u)]
    assert not external, f"the page loaded from outside the app: {external[:5]}"
    assert _files(server.cache) == []


def test_page_shows_what_went_wrong(page, server, tmp_path):
    bad = tmp_path/"holiday.avi"
    bad.write_text("not a video")
    _upload_and_classify(page, bad)
    page.wait_for_function("() => document.body.innerText.includes('holiday.avi: OpenCV cannot open it as a video')", timeout=30_000)
    assert _files(server.cache) == []


# ---------------------------------------------------------------- the command, and the load test on it

def _start(model_dir: Path) -> tuple[subprocess.Popen, str]:
    "`video-classifier serve MODEL_DIR` in its own process, as a user runs it; its URL read from the line it prints."
    command = [str(Path(sys.executable).parent/"video-classifier"), "serve", str(model_dir), "--max-upload-mb", "5"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"})
    with ThreadPoolExecutor(1) as pool:  # a server that hangs before its first line fails the test instead of hanging it
        first = pool.submit(proc.stdout.readline)
        try: line = first.result(timeout=600)
        except TimeoutError: proc.kill(); line = ""
    url = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    if not url: proc.wait(timeout=30); pytest.fail(f"the server did not start:\n{proc.stderr.read()[-3000:]}")
    return proc, url.group(1)


def _scratch(proc) -> list[Path]: return list(Path(tempfile.gettempdir()).glob(f"video_classifier-serve-{proc.pid}-*"))


@pytest.fixture
def server_process(bundle):
    "A server process, stopped at the end by Ctrl-C (SIGINT) as a user stops the command; it must exit cleanly."
    proc, url = _start(bundle[0])
    try:
        yield proc, url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()[-2000:]
        assert _scratch(proc) == []  # its uploads folder is gone
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()


def test_sigterm_stops_the_server_cleanly(bundle):
    "SIGTERM, as `kill`, systemd and `docker stop` send it, closes the server and deletes its uploads folder."
    proc, url = _start(bundle[0])
    try:
        assert len(_scratch(proc)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()[-2000:]
        assert _scratch(proc) == []
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()


def test_load(server_process, classifier, bundle):
    "8 clients x 3 requests: every answer right, no error, the server's memory flat; prints requests/s and latency."
    import psutil
    proc, url = server_process
    clips = bundle[1]
    want = {c: _expected(classifier, c)[0][0] for c in clips}
    clients, per_client = 8, 3

    def run(k: int) -> list:
        c = Client(url, verbose=False)
        out = []
        for i in range(per_client):
            clip = clips[(k * per_client + i) % len(clips)]
            start = time.perf_counter()
            try: got = c.predict(handle_file(str(clip)), None, api_name="/classify")[0]["label"]
            except Exception as e: got = f"error: {e}"
            out.append((clip, got, time.perf_counter() - start))
        return out

    run(0)  # warm-up: the first call builds TensorFlow's graphs
    rss = lambda: psutil.Process(proc.pid).memory_info().rss / 2**20
    before = rss()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool: results = [r for rs in pool.map(run, range(clients)) for r in rs]
    wall = time.perf_counter() - start
    run(1)  # a round after the burst, so that memory freed by the burst's end is counted
    after = rss()
    wrong = [(c.name, got) for c, got, _ in results if got != want[c]]
    latency = sorted(t for *_, t in results)
    print(f"\nload test: {clients} clients x {per_client} requests = {len(results)} in {wall:.1f} s: {len(results) / wall:.2f} requests/s; "
          f"latency median {latency[len(latency) // 2]:.2f} s, max {latency[-1]:.2f} s; server RSS {before:.0f} -> {after:.0f} MB")
    assert not wrong, f"{len(wrong)} wrong answers or errors: {wrong[:3]}"
    assert after - before < 80, f"server memory grew by {after - before:.0f} MB over {len(results)} requests"
