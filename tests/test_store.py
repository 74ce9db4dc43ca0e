"""The feature store (chapter 14): a store several times larger than a memory limit trains under that limit, and
extraction into a store gives exactly the in-memory features of real OpenCV-written clips.

The memory test puts the training process into a memory cgroup of its own (cgroup v1's memory controller, or
cgroup v2's memory.max), which needs root; it is skipped, saying why, where no such cgroup can be made. Sizes can
be changed with STORE_TEST_LIMIT_MB and STORE_TEST_STORE_MB."""
import json, os, subprocess, sys, textwrap, time, uuid, warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from video_classifier.data import write_video
from video_classifier.features import build_feature_extractor, extract_features, pad_features
from video_classifier.store import FeatureStore, extract_to_store

LIMIT_MB = int(os.environ.get("STORE_TEST_LIMIT_MB", 1280))  # TensorFlow and a small GRU alone take about 0.6 GB
STORE_MB = int(os.environ.get("STORE_TEST_STORE_MB", 4 * 1280))  # the store: several times the limit
T, D, SHARD = 20, 2048, 256  # InceptionV3's shape: 160 kB of features per clip

# --- memory cgroups -------------------------------------------------------------------------------------------

class MemoryCgroup:
    "A fresh memory cgroup with a hard limit and no swap: its processes are OOM-killed past the limit."
    def __init__(self, limit: int):
        self.limit, name = limit, f"video_classifier_test_{uuid.uuid4().hex[:8]}"
        v2 = Path("/sys/fs/cgroup")
        if "memory" in (v2/"cgroup.controllers").read_text().split() if (v2/"cgroup.controllers").exists() else False:
            self.version, self.path = 2, v2/name
            self.path.mkdir()
            self._write("memory.max", limit); self._write("memory.swap.max", 0, optional=True)
        else:
            self.version, self.path = 1, Path("/sys/fs/cgroup/memory")/name
            self.path.mkdir()
            self._write("memory.limit_in_bytes", limit); self._write("memory.memsw.limit_in_bytes", limit, optional=True)
    def _write(self, name: str, value, optional: bool = False):
        try: (self.path/name).write_text(str(value))
        except OSError:
            if not optional: raise
    @property
    def procs(self) -> Path: return self.path/"cgroup.procs"
    def peak(self) -> int | None:
        "Peak memory charged to the cgroup (page cache included), where the kernel keeps it."
        f = self.path/("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")
        return int(f.read_text()) if f.exists() else None
    def oom_kills(self) -> int:
        "How many processes of the cgroup the OOM killer ended."
        f = self.path/("memory.oom_control" if self.version == 1 else "memory.events")
        counts = dict(line.split() for line in f.read_text().splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0))
    def remove(self):
        for _ in range(50):  # the killed processes take a moment to leave it
            try: self.path.rmdir(); return
            except OSError: time.sleep(0.1)

@contextmanager
def memory_cgroup(limit: int):
    "A `MemoryCgroup`, removed afterwards; the test is skipped, with the reason, where none can be made."
    if os.geteuid() != 0: pytest.skip("a memory cgroup needs root (cgroup v1 memory controller or cgroup v2 memory.max)")
    try: group = MemoryCgroup(limit)
    except OSError as e: pytest.skip(f"no memory cgroup could be made here ({type(e).__name__}: {e})")
    try: yield group
    finally: group.remove()

# --- a large store, written directly ----------------------------------------------------------------------------

def synthetic_store(folder: Path, clips: int, seed: int = 0) -> FeatureStore:
    "A store of `clips` learnable synthetic clips of 2 classes, written shard by shard (no video is decoded)."
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(dict(path=[f"clip_{i:06d}.avi" for i in range(clips)], tag=np.where(np.arange(clips) % 2, "odd", "even"),
                              group=np.arange(clips) // 4))
    settings = dict(extractor="synthetic", img_size=299, max_seq_length=T, sampling="uniform", dim=D, dtype="float32")
    store = FeatureStore.create(folder, table, ["even", "odd"], settings, shard_size=SHARD)
    noise = rng.standard_normal((SHARD, T, D), dtype=np.float32)
    offsets = rng.standard_normal((2, D), dtype=np.float32)
    for k in store.missing_shards():
        labels = store.shard_clips(k).label.to_numpy()
        n = len(labels)
        masks = np.arange(T)[None] < rng.integers(T // 2, T + 1, n)[:, None]
        features = (np.roll(noise[:n], k, axis=0) + offsets[labels][:, None]) * masks[..., None]
        store.write_shard(k, features, masks, np.ones(n, bool), {})
    return store

CHILD = textwrap.dedent("""
    import json, os, sys, threading, time
    with open(sys.argv[1], "w") as f: f.write(str(os.getpid()))  # join the memory-limited cgroup before anything is loaded
    mode, folder = sys.argv[2], sys.argv[3]
    def kb(key):
        with open("/proc/self/status") as f: return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))
    peak_anon = [0]
    def watch():  # the kernel keeps the peak of the whole resident set (VmHWM, shared libraries included), not of anonymous memory
        while True: peak_anon[0] = max(peak_anon[0], kb("RssAnon")); time.sleep(0.05)
    threading.Thread(target=watch, daemon=True).start()
    import numpy as np
    from video_classifier.store import FeatureStore
    from video_classifier.train import fit_sequence_model
    start = time.time()
    store = FeatureStore.open(folder)
    (features, masks), labels, rows = store.dataset()
    if mode == "in-memory": features, masks = np.asarray(features), np.asarray(masks)  # what the in-memory path holds
    fit = fit_sequence_model((features, masks), labels, len(store.class_vocab), groups=list(rows.group), val_fraction=0.1,
                             epochs=1, batch_size=256, progress=False, units=(8,), dense_units=8, learning_rate=0.01)
    print(json.dumps(dict(vm_hwm=kb("VmHWM"), rss_anon=kb("RssAnon"), peak_anon=max(peak_anon[0], kb("RssAnon")), seconds=time.time() - start,
                          accuracy=fit.history.history["accuracy"][-1], val_accuracy=fit.history.history["val_accuracy"][-1])))
""")

def train_in(group: MemoryCgroup, mode: str, folder: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    "Train on the store at `folder` in a process inside `group` (`mode`: 'streamed' or 'in-memory')."
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-c", CHILD, str(group.procs), mode, str(folder)], capture_output=True, text=True,
                          env=env, timeout=timeout)

def test_store_larger_than_memory_trains_under_the_limit(tmp_path):
    limit, mb = LIMIT_MB * 2**20, 2**20
    with memory_cgroup(limit) as group:
        start = time.time()
        store = synthetic_store(tmp_path/"store", clips=STORE_MB * mb // (T * D * 4))
        size = sum(f.stat().st_size for f in (tmp_path/"store").rglob("*.npy"))
        written = time.time() - start
        assert size > 3 * limit, (size, limit)
        run = train_in(group, "streamed", store.folder)
        assert run.returncode == 0, f"training from the store failed under a {LIMIT_MB} MB limit (rc {run.returncode}, OOM kills {group.oom_kills()}):\n{run.stderr[-3000:]}"
        got = json.loads(run.stdout.strip().splitlines()[-1])
        peak = group.peak()
        print(f"\nstore {size/mb:.0f} MB ({store.num_clips} clips of {T}x{D}) written in {written:.1f} s; limit {LIMIT_MB} MB (cgroup v{group.version}); "
              f"streamed training: peak cgroup charge {peak and peak/mb:.0f} MB, peak RssAnon {got['peak_anon']/mb:.0f} MB (at the end "
              f"{got['rss_anon']/mb:.0f} MB), VmHWM {got['vm_hwm']/mb:.0f} MB (shared libraries' pages included), {got['seconds']:.1f} s, "
              f"val accuracy {got['val_accuracy']:.3f}")
        assert group.oom_kills() == 0 and got["peak_anon"] < limit and (peak is None or peak <= limit)
        assert got["val_accuracy"] > 0.9, got  # it trained on the store's data, not on nothing
        # the limit is real: holding the same store in memory, as the in-memory path does, is killed
        held = train_in(group, "in-memory", store.folder)
        print(f"in-memory under the same limit: rc {held.returncode}, OOM kills {group.oom_kills()}")
        assert held.returncode != 0 and group.oom_kills() >= 1, (held.returncode, held.stdout[-500:], held.stderr[-2000:])

# --- real clips -------------------------------------------------------------------------------------------------

def test_store_features_are_those_of_extract_features(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, n_frames in enumerate([12, 5, 30, 9, 16]):  # one clip shorter than T, one much longer
        frames = rng.integers(0, 256, (n_frames, 48, 64, 3), dtype=np.uint8)
        paths.append(write_video(tmp_path/f"clip_{i}.avi", frames, fps=10))
    (tmp_path/"bad.avi").write_bytes(b"not a video"); paths.insert(2, tmp_path/"bad.avi")
    df = pd.DataFrame(dict(path=[str(p) for p in paths], tag=["a", "b"] * 3))
    extractor = build_feature_extractor("mobilenet", weights=None, img_size=32, alpha=0.25)
    store = extract_to_store(df, tmp_path/"store", extractor, max_seq_length=8, shard_size=4, progress=False)
    feats, errors = extract_features(df.path, extractor, max_seq_length=8, progress=False)
    test_rows = [i for i in range(len(df)) if i not in errors]
    assert list(errors) == [2] and list(store.errors) == [2] and "bad.avi" in store.errors[2]
    features, masks = pad_features([feats[i] for i in test_rows], 8, extractor.output_shape[-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (f, m), labels, rows = store.dataset()
    assert any("bad.avi" in str(w.message) for w in caught)
    assert np.array_equal(f[:], features) and np.array_equal(m[:], masks)  # bit for bit, across the shard boundary
    assert list(rows.path) == [df.path[i] for i in test_rows] and list(labels) == [i % 2 for i in test_rows]
