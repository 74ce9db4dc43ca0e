"""`watch` on live streams that Debian's ffmpeg serves at real time over HTTP on 127.0.0.1 (MPEG-TS, re-encoded as
any camera's would be): labels as `timeline` gives them on the same file, sane latencies, a stream that drops and
comes back, a dead address, and the command's lines and JSONL on a file followed while ffmpeg writes it.

Each stream plays in real time, so these tests take about as long as their clips: about a minute in all."""
import json, os, socket, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("VIDEO_CLASSIFIER_SHARED", Path(__file__).resolve().parents[2]/"shared"))
UCF = SHARED/"data"/"clips"/"ucf101"
CLASSES = {"ApplyEyeMakeup": UCF/"ApplyEyeMakeup"/"v_ApplyEyeMakeup_g01_c01.avi",  # real footage, all 320x240 at 25 fps
           "Shotput": UCF/"Shotput"/"v_Shotput_g05_c02.avi",
           "HeadMassage": UCF/"HeadMassage"/"v_HeadMassage_g02_c05.avi"}
WEIGHTS = SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"
pytestmark = pytest.mark.skipif(not all(p.exists() for p in CLASSES.values()) or not WEIGHTS.exists(),
                                reason=f"real clips or weights not found under {SHARED} (../shared is absent)")
FPS, STEP, T = 25, 6, 8  # windows of 2 s: 8 frames, every 6th


def _free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _listening(port: int) -> bool:
    "Whether something listens on 127.0.0.1:`port` (read from /proc: a probe connection would be ffmpeg's one client)."
    rows = [l.split() for l in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return any(r[1] == f"0100007F:{port:04X}" and r[3] == "0A" for r in rows)


def _serve(ffmpeg: str, clip: Path, port: int) -> subprocess.Popen:
    "ffmpeg serving `clip` at its frame rate as MPEG-TS over HTTP on 127.0.0.1:`port`, to one client; once it listens."
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-i", str(clip), "-f", "mpegts", "-listen", "1",
               f"http://127.0.0.1:{port}/live.ts"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _listening(port):
        assert proc.poll() is None and time.monotonic() < deadline, "ffmpeg did not start listening"
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen):
    if proc.poll() is None: proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def clf(scenes_classifier):
    "The classifier of the three real clips (2 s windows, the small real MobileNet at 96 px): conftest's, trained once."
    return scenes_classifier


@pytest.fixture(scope="module")
def two_actions(tmp_path_factory) -> Path:
    "12 s of real footage: ApplyEyeMakeup (6.6 s), then Shotput (5.2 s)."
    from video_classifier.data import write_video
    from video_classifier.frames import load_video
    frames = np.concatenate([load_video(CLASSES[c], resize=None) for c in ("ApplyEyeMakeup", "Shotput")])
    return write_video(tmp_path_factory.mktemp("live")/"two_actions.avi", frames, FPS)


def test_a_stream_is_labelled_as_timeline_labels_the_file(clf, two_actions, ffmpeg):
    from video_classifier.timeline import timeline
    from video_classifier.watch import Counts, watch
    port, counts = _free_port(), Counts()
    server = _serve(ffmpeg, two_actions, port)
    start = time.monotonic()
    try: decisions = list(watch(clf, f"http://127.0.0.1:{port}/live.ts", reconnect=1, counts=counts))
    finally: _stop(server)
    seconds = time.monotonic() - start
    assert 11.7 < seconds < 30, seconds  # the stream played at real time (294 frames at 25 fps), then 1 s of retrying
    assert counts.frames >= 290 and counts.dropped == 0 and "did not come back within 1 s" in counts.ended, counts
    windows = timeline(two_actions, clf, progress=False).windows
    ends = (windows.end - 1 / FPS).to_numpy()  # the time of each window's last frame
    matched = [(d, windows.iloc[int(np.abs(ends - d.time).argmin())]) for d in decisions]
    assert len(decisions) >= len(windows) - 2 and all(abs(d.time - (w.end - 1 / FPS)) < 0.05 for d, w in matched), \
        ([d.time for d in decisions], ends)  # the same windows: same frames, same times
    agree = np.mean([d.label == w.label for d, w in matched])
    assert agree >= 0.9, [(d.time, d.label, w.label) for d, w in matched]  # re-encoded: a close call may flip
    by_segment = {}
    for d in decisions: by_segment.setdefault("ApplyEyeMakeup" if d.time < 164 / FPS else "Shotput", []).append(d.label)
    for truth, labels in by_segment.items():  # in each part of the video, the majority label is right
        assert max(set(labels), key=labels.count) == truth, by_segment
    latency = np.array([d.latency for d in decisions])
    assert (latency > 0).all() and np.median(latency) < 0.5 and latency.max() < 2, latency


def test_a_stream_that_drops_and_comes_back_is_followed(clf, ffmpeg):
    from video_classifier.watch import Counts, watch
    port, counts, clip = _free_port(), Counts(), CLASSES["Shotput"]
    servers = [_serve(ffmpeg, clip, port)]
    def restart():  # the camera comes back a second later, on the same address
        time.sleep(1); servers.append(_serve(ffmpeg, clip, port))
    decisions, restarter = [], threading.Thread(target=restart)
    try:
        for d in watch(clf, f"http://127.0.0.1:{port}/live.ts", stride=0.5, reconnect=6, counts=counts):
            decisions.append(d)
            if len(decisions) == 3: _stop(servers[0]); restarter.start()  # the stream drops mid-way
    finally:
        if restarter.is_alive() or restarter.ident: restarter.join()
        for s in servers: _stop(s)
    times = [d.time for d in decisions]
    assert counts.reconnects == 1 and "did not come back within 6 s" in counts.ended, counts
    assert np.all(np.diff(times) > 0), times
    gap = int(np.argmax(np.diff(times)))
    assert gap == 2 and np.diff(times)[gap] > 1 + 1.92, times  # the outage, then a whole new window before a decision
    assert len(decisions) - 3 >= 5, times  # the second stream (5.2 s) is labelled too
    assert all(d.label == "Shotput" for d in decisions[3:]), [(d.time, d.label) for d in decisions]


def _command(*args, timeout=90) -> subprocess.CompletedProcess:
    "The installed `video-classifier` command, run as a user runs it."
    command = [str(Path(sys.executable).parent/"video-classifier"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_a_dead_address_is_one_line_and_exit_1(clf, tmp_path):
    clf.save(tmp_path/"clf")
    port = _free_port()  # nothing listens there
    out = _command("watch", tmp_path/"clf", f"http://127.0.0.1:{port}/live.ts")
    assert out.returncode == 1, out
    said = (f"video-classifier watch: http://127.0.0.1:{port}/live.ts: cannot open the stream "
            "(nothing answered within 5 s, or it is no video)")
    assert out.stderr.strip() == said, out.stderr
    assert out.stdout == ""


def test_the_command_follows_a_file_being_written(clf, ffmpeg, tmp_path):
    "ffmpeg records a clip at real time into a file; `watch --follow` labels it as it grows: a line a decision, JSONL."
    clf.save(tmp_path/"clf")
    recording = tmp_path/"recording.ts"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-i", str(CLASSES["HeadMassage"]), "-t", "6",
               "-f", "mpegts", "-flush_packets", "1", str(recording)]
    writer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not recording.exists() or recording.stat().st_size < 50_000: time.sleep(0.05)  # recording has begun
        begun = time.monotonic()
        out = _command("watch", tmp_path/"clf", recording, "--follow", "--reconnect", "2", "--stride", "1",
                       "--top-k", "2", "--jsonl", tmp_path/"decisions.jsonl")
        seconds = time.monotonic() - begun
    finally: _stop(writer)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    records = [json.loads(line) for line in (tmp_path/"decisions.jsonl").read_text().splitlines()]
    assert seconds > 6 and len(records) >= 3, (seconds, out.stdout)  # it waited for the frames as they were written
    assert len(lines) == len(records) + 1, lines
    assert lines[-1].startswith(f"{recording}: end of the file: {len(records)} decisions; 150 frames read"), lines
    for line, r in zip(lines, records):
        assert {"time", "label", "probability", "latency", "top_k", "frames", "dropped"} <= set(r), r
        assert [t["label"] for t in r["top_k"]][0] == r["label"] and len(r["top_k"]) == 2 and 0 < r["latency"] < 2, r
        assert line.split()[:4] == [f"{r['time']:.2f}", "s", r["label"], f"{r['probability']:.0%}"], (line, r)
        assert "latency" in line, line
    assert [r["label"] for r in records].count("HeadMassage") >= len(records) - 1, records
    assert out.stderr == "", out.stderr  # FFmpeg's and OpenCV's messages silenced
