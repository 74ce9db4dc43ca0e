"""Kill -9 in the middle of `save_classifier`: the folder must still load, as the old classifier or the new one, whole.

Each trial saves an "old" classifier, then lets a child process save a "new" one (other class names, model, backbone
and calibration frames) over it again and again, and kills the child with SIGKILL at a random moment of a save.
Every part of what then loads must belong to one of the two. Each child imports TensorFlow once; the next children
import while a trial runs, so that the trials cost little more than the imports (about a minute on 2 idle cores).
"""
import hashlib, os, random, signal, subprocess, sys, time
from collections import deque
from pathlib import Path

import numpy as np
import pytest

EXTRACTOR = dict(backbone="mobilenet", alpha=0.25, img_size=32, weights=None, runtime="tf", precision="fp32")
OLD, NEW = (["walk", "run", "jump"], 1), (["swim", "climb"], 2)  # (vocabulary, the mark every part of the classifier carries)
TRIALS, AHEAD = 20, 2  # trials; children started ahead of their trial

CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from test_bundle_kill import child; child(*sys.argv[2:])"

def make_classifier(vocab: list[str], mark: int):
    "A tiny classifier whose output biases, calibration frames and backbone seed all carry `mark`."
    from video_classifier.model import get_sequence_model
    from video_classifier.predict import VideoClassifier
    model = get_sequence_model(len(vocab), max_seq_length=4, num_features=8)
    model.get_layer("probabilities").bias.assign(np.full(len(vocab), mark, np.float32))
    return VideoClassifier(model, vocab, {**EXTRACTOR, "seed": mark}, calibration_frames=np.full((len(vocab), 32, 32, 3), mark, np.uint8))

def child(folder: str, ref: str):
    "Save the new classifier in `ref` (building its backbone), say `ready`, wait for a line, then save it over `folder` until killed."
    from video_classifier.predict import save_classifier
    clf = make_classifier(*NEW)
    save_classifier(clf, ref)
    print("ready", flush=True)
    sys.stdin.readline()
    while True:
        save_classifier(clf, folder)
        print("saved", flush=True)

def _start(work: Path, k: int) -> subprocess.Popen:
    "Start the child of trial `k`, its TensorFlow messages in a file."
    with open(work/f"child{k}.err", "w") as err:
        return subprocess.Popen([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(work/"bundle"), str(work/f"ref{k}")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

def _fingerprint(weights: str | Path) -> str:
    "The SHA-256 of every array in a backbone weights file, in order."
    import h5py
    digest = hashlib.sha256()
    with h5py.File(weights, "r") as h5: h5.visititems(lambda name, obj: digest.update(obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None)
    return digest.hexdigest()

def _which(clf, backbones: dict) -> str:
    "'old' or 'new': the classifier every part of `clf` comes from (an AssertionError naming the part that does not)."
    mark = {tuple(OLD[0]): OLD[1], tuple(NEW[0]): NEW[1]}.get(tuple(clf.class_vocab))
    assert mark, f"a vocabulary of neither classifier: {clf.class_vocab}"
    assert (clf.model.get_layer("probabilities").bias.numpy() == mark).all(), "the model of the other classifier"
    assert (clf.calibration_frames == mark).all(), "the calibration frames of the other classifier"
    assert _fingerprint(clf.extractor["weights"]) == backbones[mark], "the backbone of the other classifier"
    return "old" if mark == OLD[1] else "new"

@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # the models were never trained
def test_kill_during_save_leaves_a_whole_bundle(tmp_path):
    from video_classifier.predict import load_classifier, save_classifier
    start, rng, folder = time.perf_counter(), random.Random(0), tmp_path/"bundle"
    old = make_classifier(*OLD)
    backbones = {OLD[1]: _fingerprint(save_classifier(old, folder)/"backbone.weights.h5")}
    children, tally, damaged, restored = deque(_start(tmp_path, k) for k in range(min(AHEAD, TRIALS))), dict(old=0, new=0), [], 0
    try:
        for k in range(TRIALS):
            proc = children.popleft()
            if k + AHEAD < TRIALS: children.append(_start(tmp_path, k + AHEAD))
            ready = proc.stdout.readline()
            assert ready == "ready\n", f"child {k} did not start:\n{(tmp_path/f'child{k}.err').read_text()[-3000:]}"
            backbones[NEW[1]] = _fingerprint(tmp_path/f"ref{k}"/"backbone.weights.h5")
            saving = time.perf_counter()
            save_classifier(old, folder)  # the old bundle, whole, under each trial; a save of the new one takes about as long
            seconds = time.perf_counter() - saving
            proc.stdin.write("go\n"); proc.stdin.flush()
            for _ in range(rng.randint(0, 1)): proc.stdout.readline()  # a whole save before the one cut short, or none
            time.sleep(rng.uniform(0, 1.2) * seconds)  # a random moment of the next save
            proc.send_signal(signal.SIGKILL); proc.wait()
            restored += not folder.exists()  # killed between the two renames
            try: tally[_which(load_classifier(folder), backbones)] += 1
            except Exception as e: damaged.append(f"trial {k}: {type(e).__name__}: {e}")
    finally:
        for proc in children: proc.kill()
    print(f"\n{TRIALS} trials: {tally['old']} old, {tally['new']} new, {len(damaged)} damaged "
          f"({restored} put back from .previous; {time.perf_counter() - start:.0f} s)")
    assert not damaged, "\n".join(damaged)
    assert tally["old"] and tally["new"], f"the kills all fell on one side of the swap: {tally}"
