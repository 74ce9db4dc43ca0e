"""Feature extraction, side by side: the tutorial's loop, the project's pipeline, its bounds and its faster runtimes.

Every method runs in its own subprocess on the same synthetic UCF101-like clips, so that its peak memory
(`ru_maxrss`) is its own and no method warms a cache for another. Start-up (imports, building the model, one
warm-up call) is excluded from the times; conversions to other runtimes run once, in a process of their own,
and are reported apart. Frames/s counts the frames that get a feature vector. Other processes on the machine
slow some methods more than others: run it on an idle machine, and use --repeat to keep each method's best.
The report's first line says how much of the cores other processes took during the run.

    python bench/extraction.py --out bench/results/extraction.md   # the full report (minutes on 2 cores)
    python bench/extraction.py --clips 2 --seconds 1 --backbone mobilenet --img-size 64 --max-seq-length 4
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

from report import SharedUse, run_line, table, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
METHODS = ("tutorial", "decode", "bound", "cold", "warm", "openvino-fp32", "onnx-fp32", "openvino-bf16", "openvino-int8")
LABELS = {"tutorial": "the tutorial: every frame read, one `predict` per frame", "decode": "decoding alone: `load_video`, no CNN",
          "bound": "compute bound: the CNN alone on frames in memory (TF fp32)",
          "cold": "`prepare_all_videos`, TF fp32 (the default), cold cache", "warm": "the same, warm cache",
          "openvino-fp32": "`prepare_all_videos`, OpenVINO fp32", "onnx-fp32": "`prepare_all_videos`, ONNX Runtime fp32",
          "openvino-bf16": "`prepare_all_videos`, OpenVINO bf16", "openvino-int8": "`prepare_all_videos`, OpenVINO int8 (`FAST`)"}


def make_clips(folder: Path, n: int, seconds: float, fps: int = 25, size=(320, 240)) -> list[str]:
    "Write `n` synthetic UCF101-like clips (320x240, 25 fps) and return their paths."
    import numpy as np
    from video_classifier.data import SYNTHETIC_CLASSES, render_synthetic_clip, write_video
    paths = []
    for i in range(n):
        p = folder/f"v_{SYNTHETIC_CLASSES[i % 6]}_g{i:02d}_c01.avi"
        if not p.exists():
            write_video(p, render_synthetic_clip(SYNTHETIC_CLASSES[i % 6], np.random.default_rng(i), int(seconds*fps), size), fps)
        paths.append(str(p))
    return paths


def _tutorial_load_video(path: str, size: int):
    "The tutorial's `load_video` with max_frames=0, as `prepare_all_videos` calls it: every frame of the clip."
    import cv2, numpy as np
    cap, frames = cv2.VideoCapture(path), []
    try:
        while True:
            ret, frame = cap.read()
            if not ret: break
            y, x = frame.shape[:2]; m = min(y, x)
            frame = frame[y//2 - m//2:y//2 - m//2 + m, x//2 - m//2:x//2 - m//2 + m]
            frames.append(cv2.resize(frame, (size, size))[:, :, [2, 1, 0]])
    finally: cap.release()
    return np.array(frames)


def _extractor(a, runtime="tf", precision="fp32", paths=None):
    "The benchmark's extractor, converted (outside the timed part) for a runtime other than TF fp32."
    from video_classifier.runtimes import make_extractor, sample_calibration_frames
    calib = sample_calibration_frames(paths, a.img_size, count=a.calibration) if precision == "int8" else None
    return make_extractor(a.backbone, a.weights, a.img_size, a.alpha, runtime=runtime, precision=precision, calibration_frames=calib,
                          cache_dir=Path(a.workdir)/"converted")


def run_method(a) -> dict:
    "Run one method in this process; return frames, seconds and peak RSS."
    import numpy as np, pandas as pd
    paths = json.loads(Path(a.workdir, "paths.json").read_text())
    T, S = a.max_seq_length, a.img_size
    df = pd.DataFrame(dict(video_name=[Path(p).name for p in paths], tag="x", path=paths))
    m, frames = a.method, len(paths)*T
    if m == "tutorial":
        ex = _extractor(a); ex.predict(np.zeros((1, S, S, 3), np.uint8), verbose=0)
        start = time.perf_counter()
        for p in paths:
            video = _tutorial_load_video(p, S)[None, ...]
            feats = np.zeros((1, T, ex.output_shape[-1]), np.float32)
            for j in range(min(T, len(video[0]))):  # (the tutorial's `batch.shape[1]` is the height: same for clips >= T frames)
                feats[0, j, :] = ex.predict(video[0][None, j, :], verbose=0)
    elif m == "decode":
        from video_classifier.frames import load_video
        start = time.perf_counter()
        frames = sum(len(load_video(p, max_frames=T, resize=(S, S), sampling=a.sampling)) for p in paths)
    elif m == "bound":
        ex = _extractor(a)
        x = np.random.default_rng(0).integers(0, 256, (a.batch_size, S, S, 3), dtype=np.uint8)
        ex.predict_on_batch(x)
        n_batches = -(-frames // a.batch_size)
        start = time.perf_counter()
        for _ in range(n_batches): ex.predict_on_batch(x)
    else:
        from video_classifier.features import prepare_all_videos
        runtime, precision = ("tf", "fp32") if m in ("cold", "warm") else m.split("-")
        ex = _extractor(a, runtime, precision, paths)
        ex.predict_on_batch(np.zeros((a.batch_size, S, S, 3), np.uint8))
        cache = Path(a.workdir)/("cache" if m in ("cold", "warm") else f"cache-{m}")
        if m != "warm": shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        (feats, masks), _ = prepare_all_videos(df, None, ex, max_seq_length=T, sampling=a.sampling, batch_size=a.batch_size,
                                               cache_dir=cache, progress=False)
        frames = int(masks.sum())
    seconds = time.perf_counter() - start
    return dict(method=m, frames=frames, seconds=seconds, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)


def convert(a) -> dict:
    "Convert (and quantize) the extractor for a method once, into the cache the method then loads it from."
    paths = json.loads(Path(a.workdir, "paths.json").read_text())
    start = time.perf_counter()
    _extractor(a, *a.method.split("-"), paths=paths)
    return dict(method=a.method, frames=0, seconds=time.perf_counter() - start, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)


def predict_latency(a) -> dict:
    "Seconds to classify one clip: the tutorial's path (every frame read, `predict` per frame) or ours from a bundle."
    import numpy as np, statistics
    path = json.loads(Path(a.workdir, "paths.json").read_text())[0]
    T, S = a.max_seq_length, a.img_size
    extractor = dict(backbone=a.backbone, weights=a.weights, img_size=S, alpha=a.alpha)
    if a.method == "tutorial":
        from video_classifier.features import build_feature_extractor
        from video_classifier.model import get_sequence_model
        ex, model = build_feature_extractor(**extractor), None
        def predict():  # the tutorial's `sequence_prediction` with its `prepare_single_video`
            frames = _tutorial_load_video(path, S)[None, ...]
            feats, mask = np.zeros((1, T, ex.output_shape[-1]), np.float32), np.zeros((1, T), bool)
            for j in range(min(T, len(frames[0]))): feats[0, j, :] = ex.predict(frames[0][None, j, :], verbose=0)
            mask[0, :min(T, len(frames[0]))] = 1
            return model.predict([feats, mask], verbose=0)[0]
        model = get_sequence_model(3, T, ex.output_shape[-1])
    else:
        from video_classifier.features import build_feature_extractor
        from video_classifier.model import get_sequence_model
        from video_classifier.runtimes import sample_calibration_frames
        from video_classifier.predict import VideoClassifier, load_classifier, save_classifier, sequence_prediction
        bundle = Path(a.workdir)/"bundle"
        if not (bundle/"classifier.json").exists():  # the bundle keeps calibration frames, as `video-classifier train` saves them
            ex, calib = build_feature_extractor(**extractor), sample_calibration_frames([path], S, count=a.calibration, per_clip=a.calibration)
            save_classifier(VideoClassifier(get_sequence_model(3, T, ex.output_shape[-1]), ["a", "b", "c"], extractor, a.sampling, ex, calib), bundle)
        fast = dict(runtime="openvino", precision="int8", cache_dir=str(Path(a.workdir)/"converted")) if a.method == "fast" else {}
        if fast: load_classifier(bundle, **fast).feature_extractor  # convert once, outside the times
        start = time.perf_counter(); clf = load_classifier(bundle, **fast); clf.feature_extractor
        load = time.perf_counter() - start
        predict = lambda: sequence_prediction(path, clf, verbose=False)
    times = [_timed(predict) for _ in range(4)]
    return dict(method=a.method, first=times[0], steady=statistics.median(times[1:]), load=0 if a.method == "tutorial" else load,
                rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)


def _timed(f) -> float:
    start = time.perf_counter(); f(); return time.perf_counter() - start


def backbone_speed(a) -> dict:
    "Frames/s of one backbone on frames in memory (weights=None: same cost as ImageNet weights)."
    import numpy as np
    from video_classifier.features import build_feature_extractor
    size = a.img_size if a.method != "inception_v3" or a.img_size >= 75 else 75
    ex = build_feature_extractor(a.method, weights=None, img_size=size)
    x = np.random.default_rng(0).integers(0, 256, (a.batch_size, size, size, 3), dtype=np.uint8)
    ex.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(a.batches): ex.predict_on_batch(x)
    return dict(method=a.method, frames=a.batches*a.batch_size, seconds=time.perf_counter() - start,
                rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, dim=ex.output_shape[-1])


def _child(a, method: str, workdir: Path, kind: str = "method") -> dict:
    "Run `method` in a fresh Python process and return what it measured."
    args = [sys.executable, __file__, "--child", kind, "--method", method, "--workdir", str(workdir)] + a.passthrough
    use = SharedUse()
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode: raise RuntimeError(f"{method} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]), others=(use.share() or (0.0, 0.0))[0])


def _table(rows: list[dict], first: str, refs: dict[str, dict] | None = None) -> str:
    "A Markdown table of frames, wall time, frames/s, the speed relative to each row of `refs` (column: row), peak RSS and load."
    refs = {col: r for col, r in (refs or {}).items() if r}
    fps = lambda r: r["frames"]/r["seconds"]
    return table([first, "frames", "wall s", "frames/s", *refs, "peak RSS MB", "others' CPU %"],
                 [[r["label"], r["frames"], f"{r['seconds']:.2f}", f"{fps(r):.1f}", *(f"{fps(r)/fps(ref):.2f}" for ref in refs.values()),
                   f"{r['rss_mb']:.0f}", f"{100*r['others']:.0f}"] for r in rows])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=8, help="number of synthetic clips")
    p.add_argument("--seconds", type=float, default=6, help="length of each clip in seconds (25 fps)")
    p.add_argument("--backbone", default="inception_v3")
    p.add_argument("--weights", default=None, help="weights file (default: random weights, same cost)")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNet width")
    p.add_argument("--max-seq-length", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="the project's batch size")
    p.add_argument("--sampling", default="uniform", help="the project's frame sampling (the tutorial keeps the first T)")
    p.add_argument("--calibration", type=int, default=64, help="int8 calibration frames")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    p.add_argument("--scaling", action="store_true", help="also measure ours (cold) with 2x the clips and 4x their length")
    p.add_argument("--backbones", default="inception_v3,mobilenet,mobilenet_v2,resnet50,efficientnet_b0,densenet121",
                   help="backbones to time on frames in memory ('' for none)")
    p.add_argument("--batches", type=int, default=4, help="batches per backbone timing")
    p.add_argument("--no-predict", dest="predict", action="store_false", help="skip one clip's prediction latency")
    p.add_argument("--repeat", type=int, default=1, help="runs per method and backbone (the tutorial runs once); the fastest is kept")
    p.add_argument("--workdir", default=None, help="folder for clips and caches (default: a temporary one)")
    p.add_argument("--out", default=None, help="also write the report as Markdown to this file (e.g. bench/results/extraction.md)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--method", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child: print(json.dumps(dict(method=run_method, convert=convert, backbone=backbone_speed, predict=predict_latency)[a.child](a))); return
    a.passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
                     if k in ("backbone", "img_size", "alpha", "max_seq_length", "batch_size", "sampling", "calibration", "batches") and v is not None]
    if a.weights: a.passthrough.append(f"--weights={a.weights}")
    if a.workdir is None:  # clips, caches and converted models go to a folder removed at the end
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp: return main([*(argv if argv is not None else sys.argv[1:]), f"--workdir={tmp}"])
    root, use = Path(a.workdir), SharedUse()
    settings = (f"{a.clips} synthetic clips of {a.seconds:g} s (320x240, 25 fps), {a.backbone}{f' (alpha {a.alpha:g})' if a.backbone == 'mobilenet' else ''} "
                f"at {a.img_size} px with {'weights ' + Path(a.weights).name if a.weights else 'random weights (same cost)'}, "
                f"T={a.max_seq_length} frames a clip, batch {a.batch_size}, `prepare_all_videos` samples {a.sampling!r}; each method in "
                f"its own process, start-up excluded, the fastest of {a.repeat} run{'s' * (a.repeat > 1)} (the tutorial runs once)")
    print(f"{settings}\n")
    blocks, results, conversions = [], {}, []
    def show(block: str):
        print(block + "\n"); blocks.append(block)
    def clips_in(clips, seconds) -> Path:
        work = root/f"{clips}x{seconds:g}s"; work.mkdir(parents=True, exist_ok=True)
        (work/"paths.json").write_text(json.dumps(make_clips(work/"clips", clips, seconds)))
        return work
    def measure(name, clips, seconds, key=None):
        work = clips_in(clips, seconds)
        if "-" in name: conversions.append(dict(_child(a, name, work, kind="convert"), label=f"`accelerate` to {name} (once, then cached)"))
        runs = [_child(a, name, work) for _ in range(a.repeat if name != "tutorial" else 1)]
        r = min(runs, key=lambda r: r["seconds"]); r["label"] = LABELS[name]; results[key or name] = r
        return r
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS: raise SystemExit(f"--methods: unknown method {m!r}; use {METHODS}")
        measure(m, a.clips, a.seconds)
    if methods:
        refs = {"x tutorial": results.get("tutorial"), "x compute bound": results.get("bound")}
        show("Frames a second that get a feature vector; peak RSS is the whole process's, TensorFlow included; others' CPU: the share "
             "of the cores that other processes took while the row's process ran (start-up included).\n\n" + _table([results[m] for m in methods], "method", refs))
    notes = []
    if "cold" in results and "warm" in results:
        notes.append(f"A warm cache is {results['cold']['seconds']/results['warm']['seconds']:.1f} times as fast as a cold one.")
    if "cold" in results and "bound" in results:
        b, c = results["bound"], results["cold"]
        notes.append(f"`prepare_all_videos` (TF fp32) takes {(c['seconds']/c['frames'])/(b['seconds']/b['frames']):.2f} times the compute bound's time a frame.")
    if notes: show(" ".join(notes))
    if a.predict:
        work, rows = clips_in(a.clips, a.seconds), []
        for m, label in (("tutorial", "the tutorial: every frame read, one `predict` per frame"), ("ours", "`load_classifier`, then `sequence_prediction`"),
                         ("fast", "the same with `FAST` (OpenVINO int8)")):
            try: r = _child(a, m, work, kind="predict")
            except RuntimeError as e:  # the package's prediction path is broken: say so in the report, keep the other results
                print(e, file=sys.stderr); rows.append([label, f"not measured: {str(e).strip().splitlines()[-1]}", "", "", "", ""]); continue
            rows.append([label, f"{r['first']:.2f}", f"{r['steady']:.2f}", f"{r['load']:.2f}", f"{r['rss_mb']:.0f}", f"{100*r['others']:.0f}"])
        show(f"One clip's prediction ({a.seconds:g} s, {a.backbone} at {a.img_size} px, T={a.max_seq_length}; an untrained sequence model, same cost):\n\n"
             + table(["one clip's prediction", "first call s", "steady state s (median of 3)", "bundle load s", "peak RSS MB", "others' CPU %"], rows))
    if a.scaling:
        rows = [dict(results.get("cold") or measure("cold", a.clips, a.seconds), label=f"{a.clips} clips x {a.seconds:g} s")]
        for clips, seconds in ((2*a.clips, a.seconds), (a.clips, 4*a.seconds)):
            rows.append(dict(measure("cold", clips, seconds, key=f"cold-{clips}-{seconds}"), label=f"{clips} clips x {seconds:g} s"))
        show("Peak memory of `prepare_all_videos` (cold cache) as clips get more and longer:\n\n" + _table(rows, "clips"))
    if conversions:
        show("One-off conversions (cached on disk, outside the times above):\n\n"
             + table(["conversion", "wall s", "peak RSS MB"], [[r["label"], f"{r['seconds']:.1f}", f"{r['rss_mb']:.0f}"] for r in conversions]))
    if a.backbones:
        rows = []
        for b in a.backbones.split(","):
            r = min((_child(a, b, root, kind="backbone") for _ in range(a.repeat)), key=lambda r: r["seconds"])
            r["label"] = f"{b} ({r['dim']} features)"; rows.append(r)
        show(f"Backbones alone on frames in memory at {a.img_size} px, batch {a.batch_size} (TF fp32, random weights):\n\n" + _table(rows, "backbone"))
    first = run_line(settings, use)
    print(first)
    write(a.out, [first, *blocks])

if __name__ == "__main__": main()
