"""The benchmarks are not tests, but they run once here on tiny settings so that they cannot rot."""
import subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT/"bench"/script), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_extraction_benchmark_runs(tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    out = _run("extraction.py", "--clips", "2", "--seconds", "1", "--backbone", "mobilenet", "--img-size", "64", "--alpha", "0.25",
               "--max-seq-length", "4", "--calibration", "8", "--methods", "tutorial,bound,cold,warm,openvino-int8",
               "--backbones", "", "--workdir", str(tmp_path))
    rows = [l for l in out.splitlines() if l.startswith("| (")]
    assert len(rows) == 5, out
    assert all(row.split("|")[2].strip() == "8" for row in rows), out  # 2 clips x 4 frames each
    assert "warm cache is" in out and "compute bound" in out
    predictions = [l for l in out.splitlines() if l.startswith(("| tutorial: every frame", "| ours: `load_classifier`", "| ours with --fast"))]
    assert len(predictions) == 3, out  # one clip's prediction: the tutorial's path, ours, and ours with --fast


def test_accuracy_benchmark_runs():
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    out = _run("accuracy.py", "--seeds", "1", "--epochs", "1", "--max-frames", "40", "--img-size", "64", "--T", "4",
               "--variants", "tf-fp32,openvino-fp32")
    if out.startswith("skipped"): pytest.skip(out.strip())
    assert out.count("| tf-fp32 |") == 1 and out.count("| openvino-fp32 |") == 1, out
