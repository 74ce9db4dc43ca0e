"""What each runtime and precision costs in accuracy, measured with a real pretrained CNN on real clips.

The task: each real clip in ../shared/data/clips is its own class. Windows of T consecutive frames (every
`--step`th frame) from the first part of each clip train a masked GRU; windows from the end of the clip test
it. Every variant's features come from the same pretrained MobileNet (alpha 0.25). Two measures, each a mean
over seeds: (a) cross-evaluation: the model trained on TF fp32 features, tested on the variant's features (what
happens when the fast path serves a model trained on the reference); (b) retrained on the variant's features.

    python bench/accuracy.py --out bench/results/accuracy.md   # the table (minutes on 2 cores)
    python bench/accuracy.py --seeds 1 --epochs 2 --max-frames 40 --variants tf-fp32,openvino-fp32
"""
from __future__ import annotations
import argparse, os, time
from pathlib import Path

from report import SharedUse, run_line, table, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
VARIANTS = ("tf-fp32", "openvino-fp32", "onnx-fp32", "openvino-bf16", "openvino-int8", "openvino-int8-300", "openvino-int8-fastbc")
LABELS = {"tf-fp32": "TensorFlow fp32 (the reference)", "openvino-fp32": "OpenVINO fp32", "onnx-fp32": "ONNX Runtime fp32",
          "openvino-bf16": "OpenVINO bf16", "openvino-int8": "OpenVINO int8: NNCF, 64 calibration frames (`FAST`)",
          "openvino-int8-300": "the same, 300 calibration frames", "openvino-int8-fastbc": "the same, NNCF's quick bias correction"}
SHARED = Path(__file__).resolve().parents[2]/"shared"


def clips(folder: Path) -> list[Path]:
    "The real clips, one class each."
    return sorted(p for p in folder.rglob("*") if p.suffix in (".avi", ".mp4"))


def windows(n: int, T: int, step: int, stride: int, lo: float, hi: float) -> list[list[int]]:
    "Frame indices of windows of T frames, `step` apart, starting every `stride` frames inside [lo, hi) of n frames."
    first, last = int(lo*n), int(hi*n)
    return [list(range(s, s + T*step, step)) for s in range(first, last - (T - 1)*step, stride)]


def task(frames: list, T: int, step: int, stride: int, split: float):
    "Train and test windows (clip id, frame indices) and labels."
    tr, te = [], []
    for c, f in enumerate(frames):
        tr += [(c, w) for w in windows(len(f), T, step, stride, 0.0, split)]
        te += [(c, w) for w in windows(len(f), T, step, stride, split, 1.0)]
    return tr, te


def gather(feats: list, wins: list):
    "Features (N, T, D), masks (N, T) and labels (N,) of the windows."
    import numpy as np
    x = np.stack([feats[c][w] for c, w in wins]).astype(np.float32)
    return x, np.ones(x.shape[:2], bool), np.array([c for c, _ in wins])


def variant_extractor(name: str, weights: Path, img_size: int, calib):
    "The pretrained MobileNet run the way `name` says: runtime-precision[-calibration frames][-fastbc]."
    from video_classifier.features import build_feature_extractor
    from video_classifier.runtimes import accelerate
    ex = build_feature_extractor("mobilenet", weights=weights, img_size=img_size, alpha=0.25)
    runtime, precision, *options = name.split("-")
    count = next((int(o) for o in options if o.isdigit()), 64)
    kw = dict(fast_bias_correction=True) if "fastbc" in options else None  # NNCF's quick default, for comparison
    return accelerate(ex, runtime, precision, calib[:count] if precision == "int8" else None, quantize_kw=kw)


def fit(x, m, y, num_classes: int, seed: int, epochs: int):
    "Train the package's sequence model (the tutorial's masked GRU, standardized on `x`) and return it."
    import keras
    from video_classifier.model import adapt_standardize, get_sequence_model
    keras.utils.set_random_seed(seed)
    model = get_sequence_model(num_classes, x.shape[1], x.shape[2])
    adapt_standardize(model.get_layer("standardize"), x, m)
    model.fit([x, m], y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    return model


def _timed(f) -> float:
    start = time.perf_counter(); f(); return time.perf_counter() - start


def accuracy(model, x, m, y) -> float:
    import numpy as np
    return float((model.predict([x, m], verbose=0, batch_size=256).argmax(1) == y).mean()*100)


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
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    p.add_argument("--out", default=None, help="also write the report as Markdown to this file (e.g. bench/results/accuracy.md)")
    a, use = p.parse_args(argv), SharedUse()
    import numpy as np
    from video_classifier.frames import load_video
    paths = clips(Path(a.clips))
    if not paths or not Path(a.weights).exists(): print(f"skipped: real clips ({a.clips}) or weights ({a.weights}) are absent"); return
    frames = [load_video(q, max_frames=a.max_frames, resize=(a.img_size, a.img_size)) for q in paths]
    train, test = task(frames, a.T, a.step, a.stride, a.split)
    calib_idx = np.random.default_rng(0).permutation(len(train))
    calib = np.stack([frames[train[i][0]][train[i][1][0]] for i in calib_idx[:300]])  # first frames of random training windows
    settings = (f"{len(paths)} real clips (one class each), MobileNet alpha 0.25 (pretrained) at {a.img_size} px; windows of {a.T} frames "
                f"{a.step} apart: {len(train)} train (the first {a.split:.0%} of each clip), {len(test)} test (the rest); the package's "
                f"masked GRU, {a.epochs} epochs, mean of {a.seeds} seed{'s' * (a.seeds > 1)}")
    print(f"{settings}\n")
    variants = a.variants.split(",")
    feats, speed = {}, {}
    for v in variants:
        ex = variant_extractor(v, Path(a.weights), a.img_size, calib)
        batch = np.concatenate(frames)[:32]; ex.predict_on_batch(batch)
        speed[v] = max(4*32/_timed(lambda: [ex.predict_on_batch(batch) for _ in range(4)]) for _ in range(3))  # best of 3
        feats[v] = [np.concatenate([ex.predict_on_batch(f[i:i + 32]) for i in range(0, len(f), 32)]) for f in frames]
    ref = np.concatenate(feats[variants[0]])
    data = {v: (gather(f, train), gather(f, test)) for v, f in feats.items()}
    reference = [fit(*data[variants[0]][0], len(paths), s, a.epochs) for s in range(a.seeds)]
    rows, base = [], None
    for v, (tr, te) in data.items():
        F = np.concatenate(feats[v])
        cos = np.mean(np.sum(F*ref, 1)/np.linalg.norm(F, axis=1)/np.linalg.norm(ref, axis=1))
        cross = np.mean([accuracy(m, *te) for m in reference])
        retrained = np.mean([accuracy(fit(*tr, len(paths), s, a.epochs), *te) for s in range(a.seeds)])
        base = base or (cross, retrained)
        rows.append([v, LABELS.get(v, v), f"{speed[v]:.0f}", f"{speed[v]/speed[variants[0]]:.2f}", f"{cos:.4f}", f"{cross:.1f}", f"{retrained:.1f}",
                     f"{base[0] - cross:+.1f}", f"{base[1] - retrained:+.1f}"])
    header = ["variant", "what runs the CNN", "frames/s (batch 32)", f"x {variants[0]}", f"cosine to {variants[0]}",
              "(a) cross-eval %", "(b) retrained %", "(a) loss", "(b) loss"]
    legend = (f"(a): the models trained on {variants[0]} features, tested on the variant's features (what `FAST` does with a "
              f"classifier trained on the reference); (b): trained and tested on the variant's own features. Loss: points of "
              f"accuracy lost against the first row. Frames/s: the extractor alone on 32 frames in memory, the best of 3.")
    blocks = [table(header, rows), legend]
    print("\n\n".join(blocks))
    first = run_line(settings, use)
    print(f"\n{first}")
    write(a.out, [first, *blocks])

if __name__ == "__main__": main()
