"""The installed `video-classifier` command, run as a user runs it: a subprocess, end to end."""
import os, re, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent/"video-classifier"

def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)

def test_help_lists_every_command():
    out = _run("--help").stdout
    for cmd in ("synth", "download", "extract", "train", "evaluate", "predict", "demo"): assert f"  {cmd} " in out, out

def test_small_demo_end_to_end(tmp_path):
    "The demo's whole path on a small dataset and a small random CNN: accuracy printed, bundle and GIF written."
    res = _run("demo", tmp_path/"demo", "--videos-per-class", "8", "--test-per-class", "4", "--backbone", "mobilenet",
               "--img-size", "96", "--epochs", "15")
    assert res.returncode == 0, res.stderr[-3000:]
    acc = float(re.search(r"Test accuracy: ([\d.]+)%", res.stdout).group(1))
    assert "random weights" in res.stdout and "mobilenet" in res.stdout  # says which backbone and weights it used
    assert (tmp_path/"demo"/"prediction.gif").stat().st_size > 1000
    assert (tmp_path/"demo"/"classifier"/"classifier.json").exists()
    # the saved classifier evaluates to the accuracy training printed, from its folder alone
    ev = _run("evaluate", tmp_path/"demo"/"classifier", tmp_path/"demo"/"data", "--cache-dir", tmp_path/"fresh-cache")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert abs(float(re.search(r"Test accuracy: ([\d.]+)%", ev.stdout).group(1)) - acc) < 0.01

def test_errors_are_one_line_messages(tmp_path):
    (tmp_path/"notes.avi").write_text("not a video")
    res = _run("predict", tmp_path, tmp_path/"notes.avi")
    assert res.returncode != 0 and "not a classifier bundle" in res.stderr and "Traceback" not in res.stderr
    res = _run("train", tmp_path/"missing", tmp_path/"out", "--weights", "none")
    assert res.returncode != 0 and "train.csv" in res.stderr and "Traceback" not in res.stderr
