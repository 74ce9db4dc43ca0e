"""The fast part of the robustness suite (tests/robustness.py; `make robustness` runs all of it).

A few dozen files of every input class through the API and a few through the CLI, a short fuzz, one kill -9
trial each of extraction and training, and a decoder that crashes on purpose: each must be decoded or refused with a clear error, never crash, hang or
print a traceback; an interrupted run must finish on its rerun with the results of an unbroken one.
"""
import random
from pathlib import Path

import numpy as np
import pytest

import robustness as rb

@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list:
    "Every input class, with a fuzz of 28 mutants (each kind of mutation on an .avi and an .mp4) and a 2,000-frame clip."
    return rb.input_classes(tmp_path_factory.mktemp("inputs"), fuzz_count=28, long_frames=2000)

@pytest.fixture(scope="module")
def decoded(inputs) -> dict:
    "The API's outcome for each file (`load_video` in a worker process)."
    decode = rb.Decoder(timeout=120)
    try: return {c.path: decode(c.path) for c in inputs}
    finally: decode.close()

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return rb.make_model_dir(tmp_path_factory.mktemp("model")/"bundle")

def test_mutations_are_seeded_and_varied():
    data = rb.source_clips(Path("/nonexistent"))[0].read_bytes() if rb.REAL_CLIPS else bytes(range(256)) * 64
    for kind in rb.MUTATIONS:
        a, b = (rb.mutate(data, kind, random.Random(f"0/{k}")) for k in (1, 1))
        assert a == b, f"{kind}: the same seed gave two mutants"
        assert a != data, f"{kind}: nothing changed"
    assert len({rb.mutate(data, "bit_flips", random.Random(k)) for k in range(20)}) == 20

def test_every_file_is_decoded_or_refused_clearly(inputs, decoded):
    table = rb.tally(inputs, decoded)
    bad = [f"{c.cls} {c.note or c.path.name}: {decoded[c.path].status}: {decoded[c.path].message[-500:]}" for c in inputs if decoded[c.path].status in rb.BAD]
    assert not bad, "\n".join(bad)
    assert set(table) == {"zero-byte", "not a video", "truncated", "fuzz", "header lies about frame count", "1 frame", "grayscale",
                          "huge frames", "very long", "odd file names"}
    for cls in ("zero-byte",): assert table[cls]["refused"] == sum(table[cls].values()), f"{cls}: {table[cls]}"
    for cls in ("1 frame", "grayscale", "huge frames", "very long", "header lies about frame count"):
        assert table[cls]["decoded"] == sum(table[cls].values()), f"{cls}: {table[cls]}"
    refused = {c.path.name for c in inputs if c.cls == "odd file names" and decoded[c.path].status == "refused"}
    assert refused == {"dangling.avi", "folder.avi", "fifo.avi", "missing.avi"}, refused
    assert all(decoded[c.path].status == "refused" for c in inputs if c.note in ("text", "CSV text", "an HTML error page"))

def test_frames_decoded_from_lying_headers_are_the_real_ones(inputs):
    "A header that lies about the frame count changes nothing: the same frames as from the true file."
    from video_classifier.frames import load_video
    lies = [c for c in inputs if c.cls == "header lies about frame count"]
    truth = {c.path: next(s for s in rb.source_clips(c.path.parent.parent/"sources") if c.path.name.endswith(s.name)) for c in lies}
    for c in lies: assert np.array_equal(load_video(c.path, 8, (32, 32), "uniform"), load_video(truth[c.path], 8, (32, 32), "uniform")), c.note

def test_predict_on_error_skip_agrees_with_one_file_decoding(inputs, decoded, model_dir, tmp_path):
    paths = [c.path for c in inputs]
    result = rb.check_api_batch(rb.api_batch(model_dir, paths, tmp_path/"cache"), paths, {p: o.status for p, o in decoded.items()})
    assert result["status"] == "ok", result

def test_cli_one_file_and_many(inputs, decoded, model_dir, tmp_path):
    good = next(c.path for c in inputs if c.cls == "odd file names" and decoded[c.path].status == "decoded")  # a name with odd characters
    empty = next(c.path for c in inputs if c.cls == "zero-byte")
    assert rb.cli_one(model_dir, good, tmp_path/"cache").status == "decoded"
    refused = rb.cli_one(model_dir, empty, tmp_path/"cache")
    assert refused.status == "refused" and "empty file" in refused.message, refused
    some = [c.path for c in inputs if c.cls != "fuzz"][::3]
    batch = rb.cli_batch(model_dir, some, tmp_path/"cache", {p: decoded[p].status for p in some})
    assert batch["status"] == "ok" and batch["bad"], batch

def test_kill_during_extraction(tmp_path):
    t = rb.extraction_trials(tmp_path, trials=1, seed=1)  # seed 1: killed once 4 of the 26 clips are done, then one of them damaged
    assert t.ok and t.killed == t.reruns_completed == t.damaged_injected == 1, t

@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # the previous bundle's model was never trained
def test_kill_during_training(tmp_path):
    t = rb.training_trials(tmp_path, trials=1, seed=1, epochs=12)  # killed mid-training, its saved state damaged, then rerun
    assert t.ok and t.killed == t.reruns_completed == 1, t

def test_a_decoder_crash_fails_only_its_file(tmp_path):
    result = rb.crash_containment(tmp_path)
    assert result is not None and result["ok"], result
