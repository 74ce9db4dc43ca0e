"""The action timeline of a long video, side by side with its bounds: decoding alone, the CNN alone, and the timeline.

A long synthetic 320x240, 25 fps video is written for each size (`--minutes`, default 10 and 40), streamed clip by
clip so that writing it needs no memory, and kept in `--workdir` (by default a folder of the system's temporary one) for
the next run, with the converted models. Each method runs in its own subprocess, for the tf fp32 path and the fast
path (`FAST`, OpenVINO int8), with start-up (imports, building and converting the extractor, a warm-up batch, the
sequence model's first calls) excluded from its time and from its memory growth (peak RSS after the method minus
peak RSS before it), and the share of the cores other processes took while it ran:

- decode: the video decoded once, front to back, only the frames on the timeline's grid retrieved and converted;
- cnn: the extractor alone, on as many frames in memory, in batches of `--batch-size`;
- timeline: `timeline(...)`, the whole thing (decode, CNN, sequence model, segments);
- per-window (the shortest video only): the straightforward way, each window read as `load_video` reads a clip (its
  own capture, grabbing or seeking to its frames) and all its frames through the CNN, however many windows share them.

    python bench/timeline.py --out bench/results/timeline.md   # 10 and 40 minutes: about 25 minutes on 2 cores
    python bench/timeline.py --minutes 1 4                     # a quick run

The report ends with what an hour of video costs on each path: scaled from the long video's timeline at the
benchmark's windows, and projected from the measured rates for windows of `--typical-window` seconds (UCF101's clips).
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

from report import SharedUse, run_line, table, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PATHS = {"tf": {}, "fast": dict(runtime="openvino", precision="int8")}
LABELS = {"decode": "decoding alone (grid frames retrieved)", "cnn": "the CNN alone, same frames", "timeline": "`timeline`",
          "per-window": "per window: each window read on its own (as `load_video` does), its frames through the CNN"}


def make_long_video(path: Path, minutes: float, fps: int = 25, size=(320, 240), n_clips: int = 24) -> Path:
    "Write `minutes` of synthetic clips (cycling through `n_clips` rendered ones) to `path`, clip by clip."
    import cv2, numpy as np
    from video_classifier.data import SYNTHETIC_CLASSES, render_synthetic_clip
    if path.exists(): return path
    partial = path.with_name(f".partial-{path.name}")  # a killed run leaves no short video to reuse
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    clips = [render_synthetic_clip(SYNTHETIC_CLASSES[i % 6], rng, int(rng.integers(60, 151)), size) for i in range(n_clips)]
    writer, total, i = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"XVID"), fps, size), int(minutes * 60 * fps), 0
    try:
        while total > 0:
            for frame in clips[i % n_clips][:total]: writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            total -= len(clips[i % n_clips]); i += 1
    finally: writer.release()
    os.replace(partial, path)
    return path


def _classifier(a, path: str):
    "A classifier with an untrained sequence model (same cost) and the benchmark's extractor, on `a.path`'s runtime."
    import numpy as np
    from video_classifier.model import get_sequence_model
    from video_classifier.predict import VideoClassifier
    from video_classifier.runtimes import make_extractor, sample_calibration_frames
    settings = dict(backbone=a.backbone, weights=a.weights, img_size=a.img_size, alpha=a.alpha, **PATHS[a.path])
    calib = sample_calibration_frames([path], a.img_size, count=a.calibration, per_clip=a.calibration) if a.path == "fast" else None
    ex = make_extractor(**settings, calibration_frames=calib, **(dict(cache_dir=str(Path(a.workdir)/"converted")) if a.path == "fast" else {}))
    ex.predict_on_batch(np.zeros((a.batch_size, a.img_size, a.img_size, 3), np.uint8))
    model = get_sequence_model(6, a.max_seq_length, ex.output_shape[-1])
    for n in (1, 16):  # the sequence model's graphs for one window (`rank`) and for the timeline's batches of windows
        model.predict_on_batch([np.zeros((n, a.max_seq_length, ex.output_shape[-1]), np.float32), np.ones((n, a.max_seq_length), bool)])
    return VideoClassifier(model, [f"c{i}" for i in range(6)], settings, feature_extractor=ex, clip_seconds=a.window)


def run_method(a) -> dict:
    "Run one method in this process on `a.video`; return its seconds, the frames it sampled and its RSS growth."
    import numpy as np
    from tqdm.auto import tqdm
    from video_classifier.frames import _read_frames, video_info
    from video_classifier.timeline import _sampled_frames, timeline, window_plan
    info = video_info(a.video)
    clf = _classifier(a, a.video)
    plan = window_plan(clf, info.fps)
    grid = -(-info.frames // plan.step)
    base, use = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, SharedUse()
    start = time.perf_counter()
    if a.method == "decode":
        frames = sum(1 for _ in _sampled_frames(a.video, plan.step, a.img_size, tqdm(total=info.frames, disable=True), info.fps))
    elif a.method == "cnn":
        x = np.random.default_rng(0).integers(0, 256, (a.batch_size, a.img_size, a.img_size, 3), dtype=np.uint8)
        for _ in range(-(-grid // a.batch_size)): clf.feature_extractor.predict_on_batch(x)
        frames = grid
    elif a.method == "timeline":
        result = timeline(a.video, clf, batch_size=a.batch_size, progress=False)
        frames = grid
    else:  # per-window: each window read on its own, all its frames through the CNN
        frames, T, span = 0, plan.size, (plan.size - 1) * plan.step + 1
        for first in range(0, info.frames - span + 1, plan.hop * plan.step):
            got, _ = _read_frames(a.video, first + plan.step * np.arange(T), (a.img_size, a.img_size))
            clf.rank(np.stack(got)); frames += len(got)
    seconds = time.perf_counter() - start
    return dict(method=a.method, path=a.path, seconds=seconds, frames=frames, video_s=info.frames / info.fps, others=use.share()[0],
                growth_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)


def _child(a, method: str, path: str, video: Path) -> dict:
    "Run `method` on the `path` runtime in a fresh Python process and return what it measured."
    args = [sys.executable, __file__, "--child", "--method", method, "--path", path, "--video", str(video), "--workdir", a.workdir, *a.passthrough]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode: raise RuntimeError(f"{method} ({path}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 40], help="lengths of the long videos (the first is the short one)")
    p.add_argument("--backbone", default="inception_v3")
    p.add_argument("--weights", default=None, help="weights file (default: random weights, same cost)")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNet width")
    p.add_argument("--max-seq-length", type=int, default=20)
    p.add_argument("--window", type=float, default=5.0, help="seconds a window spans (the classifier's clip_seconds)")
    p.add_argument("--typical-window", type=float, default=7.0, help="seconds of the other windows an hour is projected for")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--calibration", type=int, default=64, help="int8 calibration frames")
    p.add_argument("--paths", default="tf,fast", help="comma-separated subset of tf, fast")
    p.add_argument("--no-per-window", dest="per_window", action="store_false", help="skip the per-window comparison")
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir())/"video_classifier-bench-timeline"),
                   help="folder where the videos and converted models are made once and kept")
    p.add_argument("--note", default="", help="a sentence for the report's end: why a goal was missed, say")
    p.add_argument("--out", default=None, help="also write the report as Markdown to this file (e.g. bench/results/timeline.md)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default="tf", help=argparse.SUPPRESS)
    p.add_argument("--video", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child: print(json.dumps(run_method(a))); return
    a.passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
                     if k in ("backbone", "img_size", "alpha", "max_seq_length", "window", "batch_size", "calibration") and v is not None]
    if a.weights: a.passthrough.append(f"--weights={a.weights}")
    root, use = Path(a.workdir), SharedUse()
    settings = (f"synthetic 320x240 25 fps videos of {' and '.join(f'{m:g}' for m in a.minutes)} min, {a.backbone} at {a.img_size} px with "
                f"{'weights ' + Path(a.weights).name if a.weights else 'random weights (same cost)'}, T={a.max_seq_length}, windows of "
                f"{a.window:g} s every {a.window/2:g} s, batch {a.batch_size}; each method in its own process, start-up excluded")
    print(f"{settings}\n")
    videos = {m: make_long_video(root/f"long-{m:g}min.avi", m) for m in a.minutes}
    blocks, rows, summary, speed, missed = [], [], [], [], []
    short, long = a.minutes[0], a.minutes[-1]
    for path in a.paths.split(","):
        r = {}
        for m, video in videos.items():
            for method in ("decode", "cnn", "timeline"):
                r[m, method] = _child(a, method, path, video); print(path, m, method, r[m, method])
            if a.per_window and m == short: r[m, "per-window"] = _child(a, "per-window", path, video); print(path, m, "per-window", r[m, "per-window"])
        for (m, method), x in r.items():
            rows.append([f"{path}", f"{m:g} min", LABELS[method], x["frames"], f"{x['seconds']:.1f}", f"{x['video_s']/x['seconds']:.0f}x",
                         f"{x['frames']/x['seconds']:.0f}", f"{x['growth_mb']:.0f}", f"{100*x['others']:.0f}"])
        ratio = lambda m: r[m, "timeline"]["seconds"] / (r[m, "decode"]["seconds"] + r[m, "cnn"]["seconds"])
        longer, grown = r[long, "timeline"]["seconds"] / r[short, "timeline"]["seconds"], r[long, "timeline"]["growth_mb"] - r[short, "timeline"]["growth_mb"]
        summary.append([path, *(f"{ratio(m):.2f}" for m in (short, long)), f"{longer:.2f} (x{long/short:g} video)", f"{grown:+.0f}",
                        f"{r[short, 'per-window']['seconds']/r[short, 'timeline']['seconds']:.1f}" if (short, "per-window") in r else "-"])
        hour, typical = _hour(r[long, "decode"], r[long, "cnn"], r[long, "timeline"], ratio(long), a)
        x = r[long, "timeline"]
        speed.append([path, f"{x['video_s']/x['seconds']:.0f}x", f"{x['frames']/x['seconds']:.0f}",
                      f"{r[long, 'cnn']['frames']/r[long, 'cnn']['seconds']:.0f}", f"{hour:.0f} s", f"{typical:.0f} s"])
        missed += [f"{path}: timeline / (decode + CNN) is {ratio(m):.2f} on {m:g} min (goal 1.25)" for m in (short, long) if ratio(m) > 1.25]
        missed += [f"{path}: the {long:g}-min timeline took {longer:.2f} times the {short:g}-min one (goal {1.1*long/short:.1f})"] if longer > 1.1 * long / short else []
        missed += [f"{path}: the {long:g}-min timeline grew {grown:.0f} MB more (goal 100)"] if grown > 100 else []
        missed += [f"{path}: an hour takes {hour:.0f} s (goal about 120 s)"] if path == "fast" and hour > 132 else []
    blocks.append("Each method's time, how many times real time it runs, the frames it samples per second of its wall time, its memory growth "
                  "(peak RSS after it minus before, start-up excluded), and the share of the cores other processes took while it ran:\n\n"
                  + table(["path", "video", "method", "frames", "wall s", "x real time", "frames/s", "RSS growth MB", "others' CPU %"], rows))
    blocks.append(f"The goals: timeline / (decode + CNN) <= 1.25; the {long:g}-min timeline's time <= 1.1 x its length ratio; its "
                  "memory <= the short one's + 100 MB. The per-window way's time is on the short video.\n\n"
                  + table(["path", f"timeline / (decode + CNN), {short:g} min", f"same, {long:g} min", "time long / short",
                           "RSS growth long - short, MB", "per-window / timeline"], summary))
    fps, T = 25, a.max_seq_length
    blocks.append(f"What an hour of 320x240 video costs. At the benchmark's windows ({a.window:g} s, T={T}: {fps/_step(a.window, T, fps):.1f} "
                  f"frames through the CNN per second of video), the {long:g}-min timeline's time scaled to an hour; at windows of "
                  f"{a.typical_window:g} s (UCF101's clips; T={T}: {fps/_step(a.typical_window, T, fps):.1f} frames per second of video), "
                  f"projected from the {long:g}-min rates: (decoding's time per second of video x 3600 + the hour's sampled frames at the CNN's "
                  f"frames/s) x the measured timeline / (decode + CNN). The goal: about 120 s on the fast path.\n\n"
                  + table(["path", f"timeline x real time, {long:g} min", "timeline frames/s", "CNN alone frames/s",
                           f"an hour, {a.window:g} s windows", f"an hour, {a.typical_window:g} s windows (projected)"], speed))
    blocks.append(("Goals missed: " + "; ".join(missed) + "." if missed else "All the goals are met in this run.") + (f" {a.note}" if a.note else ""))
    for b in blocks: print(b + "\n")
    first = run_line(settings, use)
    print(first)
    write(a.out, [first, *blocks])


def _step(window: float, T: int, fps: float) -> int:
    "Frames from one sampled frame to the next for windows of `window` seconds (as `window_plan` computes it)."
    from types import SimpleNamespace
    from video_classifier.timeline import window_plan
    return window_plan(SimpleNamespace(max_seq_length=T, sampling="uniform", clip_seconds=window), fps).step


def _hour(decode: dict, cnn: dict, timeline: dict, ratio: float, a, fps: float = 25) -> tuple[float, float]:
    "Seconds an hour of video takes: the timeline's measured time scaled, and projected for windows of `a.typical_window` s."
    scaled = timeline["seconds"] * 3600 / timeline["video_s"]
    frames = 3600 * fps / _step(a.typical_window, a.max_seq_length, fps)
    return scaled, (decode["seconds"] * 3600 / decode["video_s"] + frames * cnn["seconds"] / cnn["frames"]) * ratio

if __name__ == "__main__": main()
