"""The driver of tests/test_ray.py, run by `loopback_run` beside a two-node Ray cluster on 127.0.0.1.

    python tests/_ray_job.py CONFIG.json   # writes CONFIG's "out" file: what each scenario did

Three scenarios on the same clips: a store extracted by two workers; a rerun after two of its shards were deleted
(which shards were rewritten, by their folders' inodes); and a store during whose extraction a worker is killed
with SIGKILL while it runs a shard (found by Ray's process title, `...ShardWriter)).submit`, in this process
namespace, where every process is this job's).
"""
import json, os, shutil, signal, sys, threading, time
from pathlib import Path

import pandas as pd
import ray
from video_classifier.distributed import extract_to_store_ray
from video_classifier.store import FeatureStore

TASK_TITLE = "ray::MapWorker(MapBatches(ShardWriter)).submit"


def inodes(store: FeatureStore) -> dict[int, int]:
    "Shard -> the inode of its folder (a rewritten shard is a new folder)."
    return {k: store._shard_dir(k).stat().st_ino for k in range(store.num_shards) if store.done(k)}


def _ended(pid: str) -> bool:
    "Whether process `pid` has ended: gone, or a zombie its parent has not reaped yet."
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError: return True


def kill_first_task(store_folder: Path, record: dict, stop: threading.Event):
    "SIGKILL the first Ray worker seen running a shard, recording its pid and the shards missing then."
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try: title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError: continue
            if title == TASK_TITLE:
                record["missing_at_kill"] = FeatureStore.open(store_folder).missing_shards()
                os.kill(int(pid), signal.SIGKILL)
                record["killed"] = int(pid)
                time.sleep(0.5); record["killed_gone"] = _ended(pid)
                return
        time.sleep(0.01)


def main(config: str):
    c = json.loads(Path(config).read_text())
    df, kw = pd.read_csv(c["clips"]), dict(extractor=c["settings"], max_seq_length=c["max_seq_length"], shard_size=c["shard_size"],
                                           workers=2, progress=False)
    out = {}
    ray.init(log_to_driver=False, logging_level="ERROR")  # $RAY_ADDRESS: the cluster; shared by the three scenarios
    out["nodes"] = sum(n["Alive"] for n in ray.nodes())
    start = time.perf_counter()
    first = extract_to_store_ray(df, c["first"], **kw)
    out["first_seconds"] = time.perf_counter() - start
    before = inodes(first)
    for k in c["delete"]: shutil.rmtree(first._shard_dir(k))
    extract_to_store_ray(df, c["first"], **kw)
    after = inodes(first)
    out["rewritten"] = sorted(k for k in after if after[k] != before[k])
    out["complete_after_rerun"] = not first.missing_shards()
    record, stop = {}, threading.Event()
    killer = threading.Thread(target=kill_first_task, args=(Path(c["killed"]), record, stop), daemon=True)
    FeatureStore.create(c["killed"], df, first.class_vocab, first.settings, 1)  # a shard a clip: more shards to catch one running
    killer.start()
    try: extract_to_store_ray(df, c["killed"], **kw | dict(shard_size=1))
    finally: stop.set(); killer.join()
    out.update(record)
    ray.shutdown()
    Path(c["out"]).write_text(json.dumps(out))


if __name__ == "__main__": main(sys.argv[1])
