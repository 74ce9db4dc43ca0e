"""Each runtime and precision against the reference (TF fp32), on the real pretrained MobileNet at 128 px.

Tolerances: fp32 runtimes within 1e-4 of the largest reference feature; bf16 and int8 a mean cosine similarity to
TF fp32 above 0.98 (`make bench` writes the similarities it measures to bench/results/accuracy.md).
"""
import subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the openvino extra is not installed: pip install -e '.[openvino]'")
pytest.importorskip("nncf", reason="the openvino extra is not installed: pip install -e '.[openvino]'")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

from video_classifier import runtimes
from video_classifier.features import build_feature_extractor, extractor_fingerprint
from video_classifier.runtimes import accelerate, sample_calibration_frames

SHARED = Path(__file__).resolve().parents[2]/"shared"
WEIGHTS = SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"
CLIPS = sorted((SHARED/"data"/"clips").rglob("*.avi")) + sorted((SHARED/"data"/"clips").rglob("*.mp4"))
needs_shared = pytest.mark.skipif(not WEIGHTS.exists() or len(CLIPS) < 4, reason=f"{SHARED} (pretrained weights and real clips) is absent")


def _cos(a, b): return float(np.mean(np.sum(a*b, 1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)))
def _rel(a, b): return float(np.abs(a - b).max()/np.abs(b).max())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    if not WEIGHTS.exists() or len(CLIPS) < 4: pytest.skip(f"{SHARED} (pretrained weights and real clips) is absent")
    ex = build_feature_extractor("mobilenet", weights=WEIGHTS, img_size=128, alpha=0.25)
    calib = sample_calibration_frames([str(p) for p in CLIPS[:4]], 128, count=64, per_clip=16)
    frames = sample_calibration_frames([str(p) for p in CLIPS[4:]], 128, count=48, per_clip=16)
    return ex, calib, frames, ex.predict_on_batch(frames), tmp_path_factory.mktemp("converted")


@needs_shared
@pytest.mark.parametrize("runtime", ["openvino", "onnx"])
def test_fp32_runtimes_match_tf(setup, runtime):
    ex, _, frames, ref, cache = setup
    fast = accelerate(ex, runtime, "fp32", cache_dir=cache)
    assert _rel(fast.predict_on_batch(frames), ref) < 1e-4
    assert fast.fingerprint != extractor_fingerprint(ex)


@needs_shared
@pytest.mark.parametrize("precision,min_cos", [("bf16", 0.98), ("int8", 0.98)])
def test_reduced_precision_close_to_tf(setup, precision, min_cos):
    ex, calib, frames, ref, cache = setup
    fast = accelerate(ex, "openvino", precision, calibration_frames=calib, cache_dir=cache)
    assert fast.precision == precision
    assert _cos(fast.predict_on_batch(frames), ref) > min_cos
    assert _rel(fast.predict_on_batch(frames), ref) > 1e-4, "reduced precision gave fp32's numbers: the precision hint was ignored"


@needs_shared
def test_converted_model_is_cached_and_reloaded(setup):
    ex, calib, frames, _, cache = setup
    first = accelerate(ex, "openvino", "int8", calibration_frames=calib, cache_dir=cache)
    saved = sorted((cache/"models").glob(f"*int8-{first.fingerprint}.xml"))
    assert len(saved) == 1
    mtime = saved[0].stat().st_mtime_ns
    again = accelerate(ex, "openvino", "int8", calibration_frames=calib, cache_dir=cache)
    assert saved[0].stat().st_mtime_ns == mtime, "the quantized model was made again instead of loaded"
    np.testing.assert_array_equal(again.predict_on_batch(frames), first.predict_on_batch(frames))
    other = accelerate(ex, "openvino", "int8", calibration_frames=calib[:32], cache_dir=cache)
    assert other.fingerprint != first.fingerprint  # other calibration data, other model


@needs_shared
def test_fingerprint_is_stable_across_processes(setup):
    ex, *_ = setup
    code = (f"from video_classifier.runtimes import make_extractor;"
            f"print(make_extractor('mobilenet', weights={str(WEIGHTS)!r}, img_size=128, alpha=0.25, runtime='openvino').fingerprint)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert out == accelerate(ex, "openvino", "fp32").fingerprint


def test_unavailable_precision_warns_and_falls_back(monkeypatch):
    ex = build_feature_extractor("mobilenet", weights=None, img_size=32, alpha=0.25)
    monkeypatch.setattr(runtimes, "_cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16.*falling back to fp32"):
        fast = accelerate(ex, "openvino", "bf16")
    assert fast.precision == "fp32"
    with pytest.warns(UserWarning, match="falling back"):
        assert accelerate(ex, "tf", "int8") is ex
    with pytest.raises(ValueError, match="calibration_frames"):
        accelerate(ex, "openvino", "int8")
