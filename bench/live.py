"""`watch` on a live stream: decisions per second, latency, frames dropped, CPU and memory, on two cores.

Real footage (the 25 fps UCF101 and Kinetics clips of ../shared, one after the other; synthetic clips where it is
absent) is scaled to each frame size and encoded once as MPEG-2 in MPEG-TS, kept in `--workdir`. For each configuration,
Debian's ffmpeg serves it looped at real time (`-re -stream_loop -1 ... -c copy -f mpegts -listen 1
http://127.0.0.1:PORT/live.ts`: copying, so that the server costs next to nothing), and `watch` reads it in a fresh
Python process for `--minutes` of stream: the CNN (InceptionV3 at 224 px with random weights, the same cost as
ImageNet's, or the small MobileNet), TensorFlow or `--fast` (OpenVINO int8), an untrained sequence model (same cost),
T=20 frames over `--window` s, a decision every `--stride` s. It records each decision's latency (seconds from the
arrival of the window's last frame to the decision), the frames read, kept and dropped, the process's CPU time and
its RSS. The first configuration runs for `--long-minutes` instead, for the memory over a long stream: RSS growth is
the RSS at the last decision minus the RSS at the first decision after the first minute.

    python bench/live.py --out bench/results/live.md      # the matrix at 2 min each, the long run 10 min: about 30 min
    python bench/live.py --minutes 0.5 --long-minutes 1   # a quick run
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

from report import SharedUse, run_line, table, write
from timeline import _classifier

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHARED = Path(__file__).resolve().parents[2]/"shared"
FOOTAGE = ["ucf101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ucf101/HeadMassage/v_HeadMassage_g02_c05.avi",
           "ucf101/Shotput/v_Shotput_g05_c02.avi", "kinetics400/abseiling/abseiling_k400.mp4"]  # the 25 fps ones
MOBILENET = SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"
CNNS = {"inception_v3": dict(backbone="inception_v3", alpha=1.0, img_size=224, weights=None),
        "mobilenet": dict(backbone="mobilenet", alpha=0.25, img_size=224,
                          weights=str(MOBILENET) if MOBILENET.exists() else None)}


def footage(workdir: Path, size: str, ffmpeg: str) -> tuple[Path, str]:
    "The benchmark's stream at `size` (WxH) as an MPEG-TS file made once, and what it shows."
    import numpy as np
    from video_classifier.data import write_video
    out = workdir/f"footage-{size}.ts"
    clips = [SHARED/"data"/"clips"/c for c in FOOTAGE if (SHARED/"data"/"clips"/c).exists()]
    what = f"{len(clips)} real clips, looped" if clips else "synthetic clips, looped (../shared is absent)"
    if out.exists(): return out, what
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir/"footage.avi"
    if not source.exists():
        import cv2
        from video_classifier.data import SYNTHETIC_CLASSES, render_synthetic_clip
        from video_classifier.frames import load_video
        rng = np.random.default_rng(0)
        frames = ([cv2.resize(f, (320, 240)) for c in clips for f in load_video(c, resize=None)] if clips else
                  [f for i in range(8) for f in render_synthetic_clip(SYNTHETIC_CLASSES[i % 6], rng, 100)])
        write_video(source, np.stack(frames), 25)
    w, h = size.split("x")
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-vf", f"scale={w}:{h}",
                    "-r", "25", "-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", str(out)], check=True)
    return out, what


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    "Whether something listens on 127.0.0.1:`port`, from /proc (a probe connection would take ffmpeg's one client)."
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return any(r[1] == f"0100007F:{port:04X}" and r[3] == "0A" for r in rows)


def serve(ffmpeg: str, stream: Path, seconds: float) -> tuple[subprocess.Popen, str]:
    "ffmpeg serving `stream` looped at real time for `seconds` (and a margin) on 127.0.0.1, once it listens; its URL."
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(stream),
               "-c", "copy", "-t", f"{seconds + 30:.0f}", "-f", "mpegts", "-listen", "1", url]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline: raise RuntimeError(f"ffmpeg did not serve {stream}")
        time.sleep(0.05)
    return proc, url


def _rss_mb() -> float:
    "This process's resident memory now, in MB."
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024


def run_config(a) -> dict:
    "Watch `a.url` for `a.seconds` of stream in this process; return the latencies, counts, CPU share and RSS."
    import numpy as np
    from video_classifier.watch import Counts, watch
    clf = _classifier(a, a.calibration_video)
    counts, latencies, rss, use = Counts(), [], [], SharedUse()
    cpu = lambda: sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime"))
    start, cpu0 = time.monotonic(), cpu()
    for d in watch(clf, a.url, window=a.window, stride=a.stride, reconnect=3, max_seconds=a.seconds, counts=counts):
        latencies.append(d.latency)
        rss.append((time.monotonic() - start, _rss_mb()))
    wall = time.monotonic() - start
    settled = next((mb for t, mb in rss if t >= min(60, wall / 10)), rss[0][1] if rss else 0)
    return dict(decisions=len(latencies), wall=wall, latencies=latencies, frames=counts.frames, kept=counts.kept,
                dropped=counts.dropped, reconnects=counts.reconnects, ended=counts.ended,
                cpu=(cpu() - cpu0) / wall / (os.cpu_count() or 1), rss_first=rss[0][1] if rss else 0,
                rss_settled=settled, rss_end=rss[-1][1] if rss else 0, others=use.share()[0],
                stream_s=float(np.max([0, *[t for t, _ in rss]])))


def _child(a, cnn: str, path: str, url: str, seconds: float, calibration_video: Path) -> dict:
    "Run one configuration in a fresh Python process and return what it measured."
    c = CNNS[cnn]
    args = [sys.executable, __file__, "--child", "--url", url, "--seconds", str(seconds), "--path", path,
            "--backbone", c["backbone"], "--alpha", str(c["alpha"]), "--img-size", str(a.img_size or c["img_size"]),
            "--calibration-video", str(calibration_video), "--window", str(a.window), "--stride", str(a.stride),
            "--workdir", a.workdir, *(["--weights", c["weights"]] if c["weights"] else [])]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode: raise RuntimeError(f"{cnn} {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(cnn: str, path: str, size: str, minutes: float, r: dict) -> list:
    "One configuration's line of the table."
    import numpy as np
    lat = np.array(r["latencies"]) if r["latencies"] else np.array([np.nan])
    growth = r["rss_end"] - r["rss_settled"]
    return [cnn, "--fast" if path == "fast" else "tf", size, f"{minutes:g}", r["decisions"],
            f"{r['decisions'] / r['wall']:.2f}", f"{np.median(lat):.3f}", f"{np.percentile(lat, 95):.3f}", f"{lat.max():.3f}",
            r["frames"], r["kept"], r["dropped"], f"{100 * r['cpu']:.0f}", f"{r['rss_end']:.0f}", f"{growth:+.1f}",
            f"{100 * r['others']:.0f}"]


def _goals(results: dict, long: tuple) -> list[str]:
    "The done-when targets, each with its measured value and whether it is met."
    import numpy as np
    lines = []
    def check(what: str, value: float, limit: float, unit: str = "s"):
        shown = f"{value:.0f}" if unit == "frames" else f"{value:.1f}" if unit == "MB" else f"{value:.3f}"
        lines.append(f"{'met' if value <= limit else 'MISSED'}: {what} {shown} {unit} (goal <= {limit:g} {unit})")
    for (cnn, path, size), r in results.items():
        if not r["latencies"]: lines.append(f"MISSED: {cnn} {path} {size}: no decision"); continue
        med, p95 = np.median(r["latencies"]), np.percentile(r["latencies"], 95)
        limits = dict(fast=(0.5, 1), tf=(1, 2))[path] if cnn == "inception_v3" else (0.25, 0.5)  # MobileNet: well under
        check(f"{cnn} {path} {size} latency median", med, limits[0])
        check(f"{cnn} {path} {size} latency p95", p95, limits[1])
        if path == "fast" and size == "320x240":
            check(f"{cnn} --fast 320x240 frames dropped", r["dropped"], 0, "frames")
    r = results[long]
    check(f"{' '.join(long)} RSS growth over {r['stream_s'] / 60:.1f} min", r["rss_end"] - r["rss_settled"], 50, "MB")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2, help="minutes of stream per configuration")
    p.add_argument("--long-minutes", type=float, default=10,
                   help="minutes of stream for the first configuration (memory over time)")
    p.add_argument("--cnns", default="inception_v3,mobilenet", help="comma-separated subset of inception_v3, mobilenet")
    p.add_argument("--paths", default="fast,tf", help="comma-separated subset of fast, tf")
    p.add_argument("--sizes", default="320x240,640x480", help="comma-separated frame sizes of the stream")
    p.add_argument("--img-size", type=int, default=None, help="the CNN's input side (default: 224 for both)")
    p.add_argument("--window", type=float, default=4.0, help="seconds a window spans (T=20 frames over it)")
    p.add_argument("--stride", type=float, default=1.0, help="seconds from one decision to the next")
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir())/"video_classifier-bench-live"),
                   help="folder where the streams and converted models are made once and kept")
    p.add_argument("--out", default=None, help="also write the report as Markdown here (e.g. bench/results/live.md)")
    for hidden in ("--url", "--seconds", "--path", "--backbone", "--alpha", "--weights", "--calibration-video"):
        p.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        a.seconds, a.alpha, a.max_seq_length, a.batch_size, a.calibration = float(a.seconds), float(a.alpha), 20, 16, 64
        print(json.dumps(run_config(a)))
        return
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None: raise SystemExit("bench/live.py needs ffmpeg: run `bash tools/install_ffmpeg.sh` (as root: Debian's)")
    use, root = SharedUse(), Path(a.workdir)
    configs = [(c, p_, s) for c in a.cnns.split(",") for p_ in a.paths.split(",") for s in a.sizes.split(",")]
    results, rows = {}, []
    for cnn, path, size in configs:
        stream, what = footage(root, size, ffmpeg)
        minutes = a.long_minutes if (cnn, path, size) == configs[0] else a.minutes
        server, url = serve(ffmpeg, stream, minutes * 60)
        try: r = results[cnn, path, size] = _child(a, cnn, path, url, minutes * 60, root/"footage.avi")
        finally:
            server.kill()
            server.wait()
        rows.append(_row(cnn, path, size, minutes, r))
        print(" | ".join(map(str, rows[-1])), flush=True)
    settings = (f"`watch` on {what} (MPEG-2 in MPEG-TS, 25 fps) served by ffmpeg at real time over HTTP on 127.0.0.1; "
                f"T=20 frames over {a.window:g} s windows ({20 / a.window:g} frames per second through the CNN), a decision "
                f"every {a.stride:g} s; untrained sequence model (same cost); InceptionV3 with random weights (same cost), "
                f"MobileNet alpha 0.25 {'with its ImageNet weights' if MOBILENET.exists() else 'with random weights'}; "
                "each configuration in its own process")
    header = ["CNN", "runtime", "stream", "minutes", "decisions", "decisions/s", "latency median s", "latency p95 s",
              "latency max s",
              "frames read", "frames kept", "frames dropped", "CPU %", "RSS MB", "RSS growth MB", "others' CPU %"]
    blocks = [("Per configuration: decisions and their rate; latency (seconds from the arrival of a window's last frame to "
               "its decision); frames read from the stream, kept for the CNN and dropped because it was busy; the watch's CPU "
               "time as a share of the cores; RSS at the end, and its growth from the first decision after the first minute "
               "(or tenth of the run) to the last; the share of the cores other processes took meanwhile:\n\n" + table(header, rows)),
            "The targets:\n\n" + "\n".join(f"- {g}" for g in _goals(results, configs[0]))]
    for b in blocks: print("\n" + b)
    first = run_line(settings, use)
    print("\n" + first)
    write(a.out, [first, *blocks])


if __name__ == "__main__": main()
