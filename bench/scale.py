"""Extraction at scale: the single process against Ray with 1 and 2 local workers, per worker and per 1,000 clips, projected.

Every configuration runs in a fresh process inside its own loopback-only network and process namespace
(`video_classifier.distributed.loopback_run`, root needed): Ray, when used, is a local `ray.init()` there, and the
peak memory is the peak of the summed proportional set size (PSS) of every process in the namespace (the driver,
Ray's own processes and its workers), sampled twice a second. Times: "extraction" is the time spent extracting
(the single process after its model is built and warmed up; for Ray the busiest worker's summed shard times, so
without Ray's start-up and each worker's model load), "wall" is what a user waits, start-up included. The fast
path is OpenVINO int8, converted once beforehand into a cache that every run loads. The projection to full UCF101
and Kinetics-400 scales the per-worker rate measured here, correcting for longer clips with the decoding time
measured per second of video, and says so in the report.

    python bench/scale.py --out bench/results/scale.md            # the report (about 10 minutes on 2 cores)
    python bench/scale.py --clips 6 --seconds 1 --backbone mobilenet --img-size 64 --max-seq-length 4   # a smoke run
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, threading, time
from pathlib import Path

from extraction import make_clips
from report import SharedUse, run_line, table, write

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PATHS = {"tf": dict(runtime="tf", precision="fp32"), "fast": dict(runtime="openvino", precision="int8")}
PATH_LABELS = {"tf": "TensorFlow fp32", "fast": "OpenVINO int8"}
DATASETS = {"UCF101 (13,320 clips, ~7 s)": (13_320, 7.0), "Kinetics-400 (~240,000 clips, ~10 s)": (240_000, 10.0)}


class PeakMemory:
    "The peak, over time, of the summed PSS of every process this process can see (in its namespace: all of the run's)."
    def __init__(self, every: float = 0.5):
        self.peak, self.every, self.stop = 0.0, every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True); self.thread.start()

    @staticmethod
    def now() -> float:
        "MB of PSS summed over the visible processes."
        total = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try: total += sum(int(l.split()[1]) for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if l.startswith("Pss:"))
            except (OSError, ValueError): pass
        return total/1024

    def _run(self):
        while not self.stop.is_set(): self.peak = max(self.peak, self.now()); self.stop.wait(self.every)

    def close(self) -> float:
        self.stop.set(); self.thread.join(); return max(self.peak, self.now())


def child(c: dict) -> dict:
    "One configuration, in this process: extract the clips into a new store; times, frames, memory."
    import pandas as pd
    from video_classifier.pipeline import calibrated_extractor
    from video_classifier.store import extract_to_store
    memory, begin = PeakMemory(), time.perf_counter()
    paths = json.loads(Path(c["workdir"], "paths.json").read_text())
    df = pd.DataFrame(dict(video_name=[Path(p).name for p in paths], tag=[Path(p).name.split("_")[1] for p in paths], path=paths))
    folder, cache = Path(c["workdir"])/f"store-{c['name']}", str(Path(c["workdir"])/"converted")
    out = dict(name=c["name"])
    if c["workers"] == 0:  # the single process
        from video_classifier.frames import load_video
        import numpy as np
        extractor, _ = calibrated_extractor(c["settings"], paths, cache, keep=0)
        extractor.predict_on_batch(np.zeros((c["batch_size"], c["settings"]["img_size"], c["settings"]["img_size"], 3), np.uint8))
        start = time.perf_counter()
        store = extract_to_store(df, folder, extractor, max_seq_length=c["T"], shard_size=c["shard_size"], batch_size=c["batch_size"], progress=False)
        out["extraction_s"] = time.perf_counter() - start
        start = time.perf_counter()  # decoding alone, to correct the projection for longer clips
        for p in paths: load_video(p, c["T"], (c["settings"]["img_size"],)*2, "uniform")
        out["decode_s"] = time.perf_counter() - start
        wall = start - begin
    else:
        import ray
        from video_classifier.distributed import _shard_dataset, _store_and_writer
        ray.init(num_cpus=c["cores"], include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        time.sleep(3); out["ray_idle_mb"] = PeakMemory.now() - _own_pss()  # Ray's own processes, before any work
        store, writer = _store_and_writer(df, folder, c["settings"], None, c["T"], "uniform", c["shard_size"], c["batch_size"], cache,
                                          c["cores"]//c["workers"], None)  # what `extract_to_store_ray` does, its shards timed one by one
        rows = list(_shard_dataset(store.missing_shards(), writer, c["workers"], retries=2).iter_rows())
        busy = {}
        for r in rows: busy[r["pid"]] = busy.get(r["pid"], 0.0) + r["seconds"]
        out.update(extraction_s=max(busy.values()), workers_used=len(busy))
        wall = time.perf_counter() - begin
        ray.shutdown()
    out.update(wall_s=wall, clips=store.num_clips, frames=int(store.masks[:].sum()), peak_mb=memory.close())
    return out


def _own_pss() -> float:
    "MB of PSS of this process."
    return sum(int(l.split()[1]) for l in Path("/proc/self/smaps_rollup").read_text().splitlines() if l.startswith("Pss:"))/1024


def run_child(c: dict) -> dict:
    "Run configuration `c` in a fresh process in its own namespaces; what it measured, and the others' share of the cores meanwhile."
    from video_classifier.distributed import loopback_run
    use = SharedUse()
    out = loopback_run([sys.executable, __file__, "--child", json.dumps(c)], nodes=0, capture_output=True, text=True, timeout=3600)
    if out.returncode: raise RuntimeError(f"{c['name']} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]), others=(use.share() or (0.0, 0.0))[0])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=100, help="synthetic UCF101-like clips (320x240, 25 fps)")
    p.add_argument("--seconds", type=float, default=2, help="length of each clip")
    p.add_argument("--backbone", default="inception_v3")
    p.add_argument("--img-size", type=int, default=224, help="the project's default")
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNet width")
    p.add_argument("--max-seq-length", type=int, default=20)
    p.add_argument("--shard-size", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--paths", default="tf,fast", help="comma-separated: tf (TensorFlow fp32), fast (OpenVINO int8)")
    p.add_argument("--price", type=float, default=0.05, help="assumed price in US$ per core-hour for the projection")
    p.add_argument("--workers", default="1,8,32,128", help="worker counts for the projection")
    p.add_argument("--workdir", default=None, help="folder for clips, stores and the converted model (default: a temporary one)")
    p.add_argument("--out", default=None, help="also write the report as Markdown to this file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child: print(json.dumps(child(json.loads(a.child)))); return
    if a.workdir is None:
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp: return main([*(argv if argv is not None else sys.argv[1:]), f"--workdir={tmp}"])
    work, use, cores = Path(a.workdir), SharedUse(), len(os.sched_getaffinity(0))
    (work/"clips").mkdir(parents=True, exist_ok=True)
    paths = make_clips(work/"clips", a.clips, a.seconds)
    (work/"paths.json").write_text(json.dumps(paths))
    base = dict(workdir=str(work), T=a.max_seq_length, shard_size=a.shard_size, batch_size=a.batch_size, cores=cores)
    model = dict(backbone=a.backbone, weights=None, img_size=a.img_size, **(dict(alpha=a.alpha) if a.backbone == "mobilenet" else {}))
    results = {}
    for path in a.paths.split(","):
        settings = dict(model, **PATHS[path])
        if path != "tf": _convert(settings, paths, work/"converted")
        for workers, label in ((0, "single process"), (1, "Ray, 1 worker"), (2, "Ray, 2 workers")):
            r = run_child(dict(base, name=f"{path}-{workers}", settings=settings, workers=workers))
            results[(path, workers)] = dict(r, label=f"{PATH_LABELS[path]}: {label}", workers=max(workers, 1))
            print(f"{results[(path, workers)]['label']}: {r['frames']/r['extraction_s']:.1f} frames/s, wall {r['wall_s']:.0f} s, peak {r['peak_mb']:.0f} MB", flush=True)
    blocks = [run_line(f"{a.clips} synthetic clips of {a.seconds:g} s (320x240, 25 fps), {a.backbone} at {a.img_size} px with random weights "
                       f"(the cost of ImageNet's), T={a.max_seq_length}, shards of {a.shard_size}, batches of {a.batch_size}; Ray {_ray_version()} "
                       f"local (`ray.init()` in a loopback-only namespace); each row a fresh process", use)]
    rows = []
    for r in results.values():
        fps, per = r["frames"]/r["extraction_s"], 1000/r["clips"]
        rows.append([r["label"], r["clips"], f"{r['extraction_s']:.1f}", f"{r['wall_s']:.1f}", f"{fps:.1f}", f"{fps/r['workers']:.1f}",
                     f"{r['clips']/r['extraction_s']/r['workers']:.2f}", f"{r['extraction_s']*per:.0f}", f"{r['wall_s']*per:.0f}",
                     f"{r['peak_mb']:.0f}", f"{r['ray_idle_mb']:.0f}" if "ray_idle_mb" in r else "-", f"{100*r['others']:.0f}"])
    blocks.append(table(["configuration", "clips", "extraction s", "wall s", "frames/s", "frames/s per worker", "clips/s per worker",
                         "s per 1,000 clips (extraction)", "s per 1,000 clips (wall)", "peak memory MB", "Ray idle MB", "others' CPU %"], rows))
    blocks.append("Extraction s: the single process after building and warming up its model; Ray: the busiest worker's summed "
                  "shard times (no Ray start-up, no per-worker model load). Wall s: from the process's start to the last shard "
                  "written, start-up included (for the single process, its model build, not its Python imports). Per 1,000 clips: "
                  f"the measured {a.clips} clips scaled linearly, an extrapolation, not a run of 1,000 clips. Peak memory: the "
                  "summed PSS of every process of the run (driver, Ray's processes and workers), sampled every 0.5 s; Ray idle: "
                  "Ray's own processes just after `ray.init()`. Memory does not grow with the number of clips: a shard at a time "
                  "is held, and the store is on disk.")
    blocks.append(projection(a, results))
    print("\n\n".join(blocks))
    write(a.out, blocks)


def projection(a, results: dict) -> str:
    "The projected time and cost of full UCF101 and Kinetics-400 on N workers like the one measured, with how it is obtained."
    plain_decode = results.get(("tf", 0)) or next(r for (p, w), r in results.items() if w == 0)
    decode_per_clip_s = plain_decode["decode_s"]/plain_decode["clips"]/a.seconds  # decoding seconds per second of video
    rows = []
    for path in a.paths.split(","):
        one = results[(path, 1)]  # a Ray worker with every core of this machine: the unit projected
        per_clip = one["extraction_s"]/one["clips"]
        cnn = per_clip - decode_per_clip_s*a.seconds
        for name, (n, length) in DATASETS.items():
            clip_s = cnn + decode_per_clip_s*length
            for w in map(int, a.workers.split(",")):
                hours = n*clip_s/w/3600
                rows.append([PATH_LABELS[path], name, w, f"{hours:.2f}", f"{hours*w*len(os.sched_getaffinity(0))*a.price:.2f}"])
    cores = len(os.sched_getaffinity(0))
    text = (f"Projection. A worker is one Ray worker with this machine's {cores} cores (the \"Ray, 1 worker\" rows); its time per "
            f"clip is split into decoding (measured apart: {decode_per_clip_s*1000:.0f} ms per second of video, through `load_video` "
            f"with T={a.max_seq_length} uniform frames) and the rest (the CNN on T frames, the same for any clip length), and "
            "decoding is scaled to the datasets' clip lengths. N workers are assumed to share the work perfectly (the shards are "
            "independent, a worker writes about 40 MB per 256-clip shard, and reads the clips once), on machines like this one; "
            "Ray's start-up and each worker's model load (seconds, see the wall column) are left out. Cost: workers x cores x hours "
            f"x an assumed US${a.price:.2f} per core-hour (on-demand cloud CPU prices are of that order; scale linearly for yours). "
            "Clips at Kinetics' higher resolutions decode more slowly than these 320x240 ones.")
    return text + "\n\n" + table(["path", "dataset", "workers", "hours", "US$"], rows)


def _convert(settings: dict, paths: list[str], cache: Path):
    "Convert (and quantize) the extractor once, in a process of its own, into the cache every run then loads it from."
    code = ("import json, sys; from video_classifier.pipeline import calibrated_extractor; "
            "calibrated_extractor(json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], keep=0)")
    subprocess.run([sys.executable, "-c", code, json.dumps(settings), json.dumps(paths), str(cache)], check=True, capture_output=True)


def _ray_version() -> str:
    try:
        import ray
        return ray.__version__
    except ImportError: return "(not installed)"


if __name__ == "__main__": main()
