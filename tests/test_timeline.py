"""Longer checks of the timeline: memory that does not grow with the video, windows that cover it, odd frame rates."""
import tracemalloc

import cv2
import numpy as np
import pytest

from video_classifier.data import SYNTHETIC_CLASSES, render_synthetic_clip, write_video
from video_classifier.frames import VideoError, video_info
from video_classifier.features import build_feature_extractor
from video_classifier.model import get_sequence_model
from video_classifier.predict import VideoClassifier
from video_classifier.timeline import FALLBACK_FPS, timeline, window_plan


@pytest.fixture(scope="module")
def clf():
    "An untrained classifier on a small random MobileNet: the timeline's mechanics, not its accuracy."
    ex = build_feature_extractor("mobilenet", weights=None, img_size=32, alpha=0.25)
    return VideoClassifier(get_sequence_model(3, 8, ex.output_shape[-1]), ["a", "b", "c"], dict(backbone="mobilenet", weights=None, img_size=32, alpha=0.25),
                           feature_extractor=ex, clip_seconds=2.0)


def long_video(path, seconds, fps=25, size=(160, 120)):
    "`seconds` of synthetic clips, written clip by clip (no whole video in memory)."
    rng, w = np.random.default_rng(0), cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), fps, size)
    clips = [render_synthetic_clip(SYNTHETIC_CLASSES[i % 6], rng, 50, size) for i in range(6)]
    for i in range(int(seconds * fps) // 50):
        for f in clips[i % 6]: w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path


def peak_mb(f):
    tracemalloc.start(); f(); peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return peak / 1e6


def test_memory_does_not_grow_with_the_video(clf, tmp_path):
    short, long = long_video(tmp_path/"short.avi", 20), long_video(tmp_path/"long.avi", 160)
    timeline(short, clf, progress=False)  # warm-up: graphs traced, caches filled
    small, big = peak_mb(lambda: timeline(short, clf, progress=False)), peak_mb(lambda: timeline(long, clf, progress=False))
    assert big < small + 2, (small, big)  # 8x the video: the window table grows (a few kB), frames and features do not


def test_windows_cover_the_video_at_the_stride(clf, tmp_path):
    video = long_video(tmp_path/"v.avi", 40)
    r = timeline(video, clf, stride=0.5, progress=False)
    plan = window_plan(clf, 25, stride=0.5)
    assert (r.window, r.stride) == (plan.size * plan.step / 25, plan.hop * plan.step / 25)
    assert abs(r.stride - 0.5) <= plan.step / 25 / 2  # the stride asked for, on the grid of sampled frames
    starts = r.windows.start.to_numpy()
    assert np.allclose(np.diff(starts[:-1]), r.stride) and starts[0] == 0
    assert abs(r.windows.end.iloc[-1] - 40) <= plan.step / 25 and r.segments.end.iloc[-1] == 40


def test_a_video_without_frame_rate_is_taken_at_the_fallback(clf, tmp_path, monkeypatch):
    video = write_video(tmp_path/"v.avi", render_synthetic_clip("Growing", np.random.default_rng(0), 100, (64, 48)), 10)
    import video_classifier.timeline as tl
    real = tl.video_info
    monkeypatch.setattr(tl, "video_info", lambda p: real(p)._replace(fps=0.0))
    with pytest.warns(UserWarning, match="no frame rate stored; assuming 25 fps"):
        r = timeline(video, clf, progress=False)
    assert r.fps == FALLBACK_FPS and r.duration == 100 / FALLBACK_FPS


@pytest.mark.parametrize("keep", [0.03, 0.3])
def test_a_truncated_video_whose_header_promises_more(clf, tmp_path, keep):
    "A file cut short keeps a header that counts every frame: the timeline covers what can be decoded, or names the file."
    whole = long_video(tmp_path/"whole.avi", 20)
    cut = tmp_path/"cut.avi"; cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * keep)])
    assert video_info(cut).frames >= 400  # the header still promises 20 s
    try: r = timeline(cut, clf, progress=False)
    except VideoError as e: assert str(cut) in str(e); return
    assert len(r.windows) >= 1 and r.segments.end.iloc[-1] <= 20 + 1e-9
