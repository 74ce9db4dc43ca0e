"""The web app under load: a server in its own process (as `video-classifier serve` runs it) on 127.0.0.1, and N
clients each sending clips through the API (`gradio_client`), in rounds. Prints, per round, requests/s, median and
worst latency, wrong answers and errors, and the server's memory (RSS), so that a leak shows as a climb.

    python bench/serve.py                              # builds a small classifier on synthetic clips (about a minute)
    python bench/serve.py --model-dir DIR --clips DIR  # a saved classifier, and a folder of clips to send
    python bench/serve.py --clients 8 --requests 3 --rounds 5
"""
from __future__ import annotations
import argparse, os, re, signal, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent/"shared"/"weights"/"mobilenet_2_5_224_tf_no_top.h5"
_SERVER = "import sys\nfrom video_classifier.serve import serve\nserve(sys.argv[1], max_upload_mb=50)\n"


def small_classifier(folder: Path) -> tuple[Path, list[Path]]:
    "Train a small classifier on synthetic clips (MobileNet 0.25 at 96 px) and return its folder and the test clips."
    from video_classifier.data import make_synthetic_dataset
    from video_classifier.pipeline import train_classifier
    data = make_synthetic_dataset(folder/"data", videos_per_class=10, test_per_class=3, classes=("Growing", "Shrinking", "FadingIn", "FadingOut"))
    train_classifier(data, folder/"classifier", backbone="mobilenet", alpha=0.25, weights=WEIGHTS if WEIGHTS.is_file() else None,
                     img_size=96, max_seq_length=8, epochs=60, batch_size=16, progress=False)
    return folder/"classifier", sorted((data/"test").glob("*.avi"))


def start_server(model_dir: Path) -> tuple[subprocess.Popen, str]:
    "`serve(model_dir)` in its own process, blocking as the command does; its URL from the line it prints."
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(model_dir)], stdout=subprocess.PIPE, text=True, env=env)
    url = re.search(r"at (http://127\.0\.0\.1:\d+/)", proc.stdout.readline())
    if not url: proc.kill(); raise SystemExit("the server did not start")
    return proc, url.group(1)


def burst(url: str, clips: list[Path], want: dict, clients: int, requests: int) -> dict:
    "`clients` clients at once, each sending `requests` clips in turn: the round's figures."
    from gradio_client import Client, handle_file
    def client(k: int) -> list[tuple[bool, float]]:
        c, out = Client(url, verbose=False), []
        for i in range(requests):
            clip, start = clips[(k * requests + i) % len(clips)], time.perf_counter()
            try: ok = c.predict(handle_file(str(clip)), None, api_name="/classify")[0]["label"] == want[clip]
            except Exception: ok = None
            out.append((ok, time.perf_counter() - start))
        return out
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool: results = [r for rs in pool.map(client, range(clients)) for r in rs]
    wall, latency = time.perf_counter() - start, sorted(t for _, t in results)
    return dict(n=len(results), rate=len(results) / wall, median=latency[len(latency) // 2], worst=latency[-1],
                wrong=sum(ok is False for ok, _ in results), errors=sum(ok is None for ok, _ in results))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, help="a saved classifier (default: train a small one)")
    ap.add_argument("--clips", type=Path, help="a folder of clips to send (default: the small classifier's test clips)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=3, help="per client and round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import psutil
    from video_classifier.predict import load_classifier
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, clips = (args.model_dir, sorted(args.clips.glob("*.*"))) if args.model_dir else small_classifier(Path(scratch))
        clf = load_classifier(model_dir)
        want = {c: clf.rank(clf.read_frames(c), 1)[0][0] for c in clips}
        proc, url = start_server(model_dir)
        try:
            rss = lambda: psutil.Process(proc.pid).memory_info().rss / 2**20
            burst(url, clips, want, 1, 2)  # warm-up: TensorFlow builds its graphs on the first calls
            print(f"server {url}, {len(clips)} clips, {args.clients} clients x {args.requests} requests a round; RSS after warm-up {rss():.0f} MB")
            print("| round | requests | requests/s | median latency (s) | worst (s) | wrong | errors | server RSS (MB) |")
            print("|---|---|---|---|---|---|---|---|")
            for r in range(1, args.rounds + 1):
                f = burst(url, clips, want, args.clients, args.requests)
                print(f"| {r} | {f['n']} | {f['rate']:.2f} | {f['median']:.2f} | {f['worst']:.2f} | {f['wrong']} | {f['errors']} | {rss():.0f} |", flush=True)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
