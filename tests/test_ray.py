"""Extraction on a real two-node Ray cluster (started on 127.0.0.1 in a loopback-only network namespace).

The features equal the single-process `extract_to_store`'s, a rerun rewrites only the shards that were missing, and
a worker killed with SIGKILL in the middle of a shard has its shard redone: the store ends complete and identical.
One cluster serves the three tests (tests/_ray_job.py drives it); about two minutes on two busy cores.
"""
import json, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install 'video_classifier[ray]')")
from video_classifier.data import SYNTHETIC_CLASSES, load_split, make_synthetic_dataset
from video_classifier.distributed import can_isolate, loopback_run
from video_classifier.pipeline import extractor_settings
from video_classifier.runtimes import make_extractor
from video_classifier.store import FeatureStore, extract_to_store

pytestmark = pytest.mark.skipif(not can_isolate(), reason="needs root (or user namespaces), unshare and ip: Ray's test cluster runs in a "
                                "loopback-only network namespace so that nothing leaves 127.0.0.1")
SETTINGS = extractor_settings("mobilenet", weights=None, img_size=64, alpha=0.25)
T, SHARD = 12, 2


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    "The plain store, the job's stores and what the job reported."
    tmp = tmp_path_factory.mktemp("ray")
    df = load_split(make_synthetic_dataset(tmp/"clips", videos_per_class=2, test_per_class=1, classes=SYNTHETIC_CLASSES[:4]), "train")
    plain = extract_to_store(df, tmp/"plain", make_extractor(**SETTINGS), max_seq_length=T, shard_size=SHARD, progress=False)
    df.to_csv(tmp/"clips.csv", index=False)
    config = dict(clips=str(tmp/"clips.csv"), settings=SETTINGS, max_seq_length=T, shard_size=SHARD, delete=[1, 3],
                  first=str(tmp/"first"), killed=str(tmp/"killed"), out=str(tmp/"out.json"))
    (tmp/"config.json").write_text(json.dumps(config))
    run = loopback_run([sys.executable, str(Path(__file__).with_name("_ray_job.py")), str(tmp/"config.json")],
                       capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return plain, FeatureStore.open(tmp/"first"), FeatureStore.open(tmp/"killed"), json.loads((tmp/"out.json").read_text())


def same(a: FeatureStore, b: FeatureStore) -> bool:
    "Whether two stores hold exactly the same clips, features, masks and readable flags."
    return (list(a.clips.path) == list(b.clips.path) and np.array_equal(a.features[:], b.features[:])
            and np.array_equal(a.masks[:], b.masks[:]) and np.array_equal(a.ok, b.ok))


def test_two_nodes_write_identical_features(job):
    plain, first, _, out = job
    assert out["nodes"] == 2
    assert plain.num_shards == 4 and not first.missing_shards()
    assert same(first, plain)
    assert first.shard_digests() == plain.shard_digests()


def test_rerun_rewrites_only_missing_shards(job):
    plain, first, _, out = job
    assert out["rewritten"] == [1, 3]  # shards 0 and 2 were kept, the deleted ones written again
    assert out["complete_after_rerun"] and same(first, plain)


def test_killed_worker_shard_is_redone(job):
    plain, _, killed, out = job
    assert out.get("killed_gone"), f"no worker was seen running a shard and killed: {out}"
    assert out["missing_at_kill"], "the kill came after the extraction"
    assert not killed.missing_shards()
    assert same(killed, plain)


def test_the_command_extracts_on_the_cluster(tmp_path):
    "`video-classifier extract --store DIR --ray auto` inside the namespace, beside a 2-node cluster: the plain command's features."
    data = make_synthetic_dataset(tmp_path/"data", videos_per_class=2, test_per_class=1, classes=SYNTHETIC_CLASSES[:2])
    command = [str(Path(sys.executable).parent/"video-classifier"), "extract", str(data), "--split", "all", "--backbone", "mobilenet",
               "--alpha", "0.25", "--weights", "none", "--img-size", "64", "--seq-len", str(T), "--shard-size", "2", "--cache-dir", str(tmp_path/"cache")]
    on_ray = loopback_run([*command, "--store", str(tmp_path/"ray"), "--ray", "auto", "--workers", "2"], capture_output=True, text=True, timeout=600)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "6 clips" in on_ray.stdout and "3 shards, 2 Ray workers" in on_ray.stdout, on_ray.stdout
    plain = subprocess.run([*command, "--store", str(tmp_path/"plain")], capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert same(FeatureStore.open(tmp_path/"ray"), FeatureStore.open(tmp_path/"plain"))
