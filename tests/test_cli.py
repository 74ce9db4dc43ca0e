"""The installed `video-classifier` command, run as a user runs it: a subprocess, end to end."""
import os, re, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent/"video-classifier"

_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|To enable the following instructions|.*oneDNN|.*cpu_feature_guard)", re.M)

def _run(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    "Run the installed command as a user does: no TensorFlow log settings of ours in the environment."
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, **(env or {})}
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)

def test_help_lists_every_command():
    out = _run("--help").stdout
    for cmd in ("synth", "download", "extract", "train", "evaluate", "predict", "timeline", "explain", "serve", "demo"): assert f"  {cmd} " in out, out

def test_help_never_imports_tensorflow():
    "`--help` answers without loading TensorFlow: the module imports nothing heavy, and no log line is printed."
    probe = ("import sys, video_classifier.cli as c\n"
             "for cmd in ('', 'train', 'predict', 'demo'):\n"
             "    try: c.main([cmd, '--help'] if cmd else ['--help'])\n"
             "    except SystemExit: pass\n"
             "print('LOADED', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout and "usage: video-classifier train" in res.stdout, res.stdout[-2000:]
    assert res.stderr == "", res.stderr

def test_small_demo_end_to_end(tmp_path):
    "The demo's whole path on a small dataset and a small random CNN: accuracy printed, bundle and GIF written."
    res = _run("demo", tmp_path/"demo", "--videos-per-class", "8", "--test-per-class", "4", "--backbone", "mobilenet",
               "--img-size", "96", "--epochs", "15")
    assert res.returncode == 0, res.stderr[-3000:]
    acc = float(re.search(r"Test accuracy: ([\d.]+)%", res.stdout).group(1))
    assert "random weights" in res.stdout and "mobilenet" in res.stdout  # says which backbone and weights it used
    assert (tmp_path/"demo"/"prediction.gif").stat().st_size > 1000
    assert (tmp_path/"demo"/"classifier"/"classifier.json").exists()
    assert not _LOG_LINE.search(res.stdout + res.stderr), _LOG_LINE.search(res.stdout + res.stderr).group(0)  # quiet by default
    # the saved classifier evaluates to the accuracy training printed, from its folder alone
    ev = _run("evaluate", tmp_path/"demo"/"classifier", tmp_path/"demo"/"data", "--cache-dir", tmp_path/"fresh-cache")
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert abs(float(re.search(r"Test accuracy: ([\d.]+)%", ev.stdout).group(1)) - acc) < 0.01
    # predict prints its ranked labels and nothing else; --verbose brings TensorFlow's lines back
    clip = sorted((tmp_path/"demo"/"data"/"test").glob("*.avi"))[0]
    quiet = _run("predict", tmp_path/"demo"/"classifier", clip, "--top-k", "2")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.splitlines() == [str(clip), *quiet.stdout.splitlines()[1:]] and len(quiet.stdout.splitlines()) == 3, quiet.stdout
    as_make = _run("predict", tmp_path/"demo"/"classifier", clip, "--top-k", "2", env={"TF_CPP_MIN_LOG_LEVEL": "2"})  # as `make` runs it
    assert as_make.returncode == 0 and as_make.stderr == "", as_make.stderr
    loud = _run("predict", tmp_path/"demo"/"classifier", clip, "--top-k", "2", "--verbose")
    assert loud.returncode == 0 and _LOG_LINE.search(loud.stderr), loud.stderr

def test_errors_are_one_line_messages(tmp_path):
    (tmp_path/"notes.avi").write_text("not a video")
    res = _run("predict", tmp_path, tmp_path/"notes.avi")
    assert res.returncode != 0 and "not a classifier bundle" in res.stderr and "Traceback" not in res.stderr
    res = _run("train", tmp_path/"missing", tmp_path/"out", "--weights", "none")
    assert res.returncode != 0 and "no such file or folder" in res.stderr and "Traceback" not in res.stderr, res.stderr

def test_bad_clip_is_named_once(tmp_path):
    "A clip that cannot be read stops `extract` with its path and problem said once; --skip-bad goes on without it."
    import numpy as np
    from video_classifier.data import write_video
    for cls in ("A", "B"):
        for k in range(3): write_video(tmp_path/"ds"/cls/f"{cls}{k}.avi", np.full((4, 32, 32, 3), 40*k, np.uint8))
    (tmp_path/"ds"/"B"/"notes.avi").write_text("not a video")
    opts = ("--weights", "none", "--backbone", "mobilenet", "--alpha", "0.25", "--img-size", "32", "--seq-len", "2", "--cache-dir", tmp_path/"cache")
    res = _run("extract", tmp_path/"ds", "--split", "all", *opts)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("notes.avi") == 1 and "cannot open it as a video" in res.stderr, res.stderr
    res = _run("extract", tmp_path/"ds", "--split", "all", "--skip-bad", *opts)
    assert res.returncode == 0 and "6 clips" in res.stdout and "notes.avi" in res.stderr, (res.stdout, res.stderr)
