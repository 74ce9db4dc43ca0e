"""The exported classifier (ONNX, TFLite; fp32 and int8) against the bundle it came from, on the real-footage task.

The task is bench/accuracy.py's: each real clip in ../shared/data/clips is its own class; windows of T frames (every
`--step`th frame) from the first 60% of each clip train the package's masked GRU on the pretrained MobileNet's
features, windows from the rest test it. The trained classifier is saved as a bundle and exported from that folder
with `export_classifier`, once per format and precision; int8 calibrates on 64 frames of training windows, as the
bundle keeps them for `--fast`. Each export then classifies the test windows' frames (uint8, as `read_frames` gives
them) and is compared with the bundle's own predictions on the same frames: accuracy, agreement of the top-1 label,
the largest and mean |p - p_bundle|, its speed (frames and clips per second, batches of `--batch` clips, the best of 3
passes over the test windows) and its file size. Accuracy is the mean (and sd) over `--seeds` trainings; speed and
sizes are the first seed's.

    python bench/export.py --out bench/results/export.md      # a few minutes on 2 cores
    python bench/export.py --seeds 1 --epochs 2 --max-frames 60 --img-size 96   # a quick run
"""
from __future__ import annotations
import argparse, os, tempfile, time
from pathlib import Path

from accuracy import SHARED, accuracy, clips, fit, gather, task
from report import SharedUse, run_line, table, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
EXPORTS = (("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8"))
RUNNERS = {"onnx": "ONNX Runtime", "tflite": "LiteRT (ai-edge-litert)"}


def bundle(folder: Path, frames: list, train: list, weights: Path, img_size: int, seed: int, epochs: int, names: list):
    "Train the window task's classifier on the pretrained MobileNet's features and save it as a bundle in `folder`."
    import numpy as np
    from video_classifier.features import build_feature_extractor
    from video_classifier.predict import VideoClassifier, save_classifier
    ex = build_feature_extractor("mobilenet", weights=weights, img_size=img_size, alpha=0.25)
    feats = [np.concatenate([ex.predict_on_batch(f[i:i + 32]) for i in range(0, len(f), 32)]) for f in frames]
    model = fit(*gather(feats, train), len(frames), seed, epochs)
    calib = np.stack([frames[train[i][0]][train[i][1][0]] for i in np.random.default_rng(seed).permutation(len(train))[:64]])
    settings = dict(backbone="mobilenet", weights=str(weights), img_size=img_size, alpha=0.25, runtime="tf", precision="fp32")
    clf = VideoClassifier(model, names, settings, "uniform", feature_extractor=ex, calibration_frames=calib)
    return save_classifier(clf, folder)


def runner(path: Path, fmt: str, threads: int):
    "A function (frames, mask) -> probabilities running the exported file as a user would, without this package."
    import onnxruntime as ort
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda f, m: session.run(["probabilities"], dict(frames=f, mask=m))[0]
    from ai_edge_litert.interpreter import Interpreter
    run = Interpreter(str(path), num_threads=threads).get_signature_runner()
    return lambda f, m: run(frames=f, mask=m)["probabilities"]


def timed(predict, frames, mask, batch: int):
    "Probabilities of all clips in batches of `batch`, and the best of 3 passes' seconds."
    import numpy as np
    def once(): return np.concatenate([predict(frames[i:i + batch], mask[i:i + batch]) for i in range(0, len(frames), batch)])
    probs, best = once(), float("inf")
    for _ in range(3):
        start = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - start)
    return probs, best


def bundle_predict(clf):
    "The bundle's own path on padded clips: its CNN on the real frames (many clips per batch), then its sequence model."
    import numpy as np
    from video_classifier.features import pad_features
    def predict(frames, mask):
        feats = clf.feature_extractor.predict_on_batch(frames[mask])
        split = np.split(feats, np.cumsum(mask.sum(1))[:-1])
        return clf.model.predict_on_batch(list(pad_features(split, clf.max_seq_length, feats.shape[1])))
    return predict


def size(path: Path) -> float:
    "Megabytes of a file, or of a folder's files."
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)/1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", default=str(SHARED/"data"/"clips"), help="folder of real clips (one class each)")
    p.add_argument("--weights", default=str(SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"))
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--max-frames", type=int, default=0, help="frames read per clip (0: all)")
    p.add_argument("--T", type=int, default=8, help="frames per window")
    p.add_argument("--step", type=int, default=2, help="frames between a window's frames")
    p.add_argument("--stride", type=int, default=4, help="frames between window starts")
    p.add_argument("--split", type=float, default=0.6, help="share of each clip (from its start) that trains")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=4, help="clips per call of an exported model (4 clips of 8 frames: 32 frames)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="LiteRT's threads (ONNX Runtime uses every core)")
    p.add_argument("--out", default=None, help="also write the report as Markdown to this file (e.g. bench/results/export.md)")
    a, use = p.parse_args(argv), SharedUse()
    import numpy as np
    from video_classifier.export import export_classifier, padded_clips
    from video_classifier.frames import load_video
    from video_classifier.predict import load_classifier
    paths = clips(Path(a.clips))
    if not paths or not Path(a.weights).exists(): print(f"skipped: real clips ({a.clips}) or weights ({a.weights}) are absent"); return
    frames = [load_video(q, max_frames=a.max_frames, resize=(a.img_size, a.img_size)) for q in paths]
    train, test = task(frames, a.T, a.step, a.stride, a.split)
    X, M = padded_clips([frames[c][w] for c, w in test], a.T)
    y = np.array([c for c, _ in test])
    settings = (f"{len(paths)} real clips (one class each), MobileNet alpha 0.25 (pretrained) at {a.img_size} px; windows of {a.T} "
                f"frames {a.step} apart: {len(train)} train (the first {a.split:.0%} of each clip), {len(test)} test (the rest); the "
                f"package's masked GRU, {a.epochs} epochs; accuracy the mean of {a.seeds} seed{'s' * (a.seeds > 1)}")
    print(f"{settings}\n")
    results, work = {}, Path(tempfile.mkdtemp(prefix="bench-export-"))
    for seed in range(a.seeds):
        folder = bundle(work/f"bundle{seed}", frames, train, Path(a.weights), a.img_size, seed, a.epochs, [q.stem for q in paths])
        variants = {"bundle": (bundle_predict(load_classifier(folder)), folder)}
        if seed == 0: variants["bundle --fast"] = (bundle_predict(load_classifier(folder, runtime="openvino", precision="int8")), folder)
        for fmt, precision in EXPORTS:
            out = export_classifier(folder, work/f"s{seed}-{precision}.{fmt}", precision=precision)
            variants[f"{fmt} {precision}"] = (runner(out, fmt, a.threads), out)
        reference = None
        for name, (predict, path) in variants.items():
            probs, secs = timed(predict, X, M, a.batch)
            reference = probs if reference is None else reference
            r = results.setdefault(name, dict(acc=[], agree=[], max=[], mean=[], path=path, secs=secs))
            r["acc"].append(float((probs.argmax(1) == y).mean()*100))
            r["agree"].append(float((probs.argmax(1) == reference.argmax(1)).mean()*100))
            r["max"].append(float(np.abs(probs - reference).max()))
            r["mean"].append(float(np.abs(probs - reference).mean()))
            print(f"seed {seed} {name}: accuracy {r['acc'][-1]:.1f}%, agreement {r['agree'][-1]:.1f}%, max |p - p_bundle| {r['max'][-1]:.4f}")
    n_frames, rows = int(M.sum()), []
    for name, r in results.items():
        fmt = name.split()[0]
        what = (RUNNERS.get(fmt, "the package (TensorFlow)" if name == "bundle" else "the package, its CNN by OpenVINO int8")
                + ("" if fmt == "bundle" else f", {size(r['path']):.2f} MB"))
        rows.append([name, what, f"{n_frames/r['secs']:.0f}", f"{len(X)/r['secs']:.1f}", f"{results['bundle']['secs']/r['secs']:.2f}",
                     f"{np.mean(r['acc']):.1f} ± {np.std(r['acc']):.1f}", f"{np.mean(r['agree']):.1f}", f"{max(r['max']):.4f}",
                     f"{np.mean(r['mean']):.5f}"])
    header = ["variant", "what runs it", "frames/s", "clips/s", "x bundle", "accuracy %", "top-1 agreement %", "max |p - p_bundle|",
              "mean |p - p_bundle|"]
    legend = (f"Every row classifies the same {len(X)} test windows ({n_frames} frames) from their uint8 frames. The bundle row is the "
              f"reference (its own predictions: agreement 100%, differences 0); `--fast` runs the bundle's CNN with OpenVINO int8 "
              f"(seed 0 only). The exported files run outside the package, through ONNX Runtime or LiteRT ({a.threads} threads), "
              f"{a.batch} clips a call; bundle sizes: {size(results['bundle']['path']):.2f} MB. Accuracy: mean ± sd over "
              f"{a.seeds} trainings, chance {100/len(paths):.1f}%; agreement and differences against the bundle of the same "
              f"training, the max over trainings. Speed: the first training's, the best of 3 passes.")
    blocks = [table(header, rows), legend]
    print("\n\n".join(blocks))
    first = run_line(settings, use)
    print(f"\n{first}")
    write(a.out, [first, *blocks])


if __name__ == "__main__": main()
