"""The robustness suite (issue 11): bad input of every kind through the API and the CLI, and kill -9 trials.

Usage: python tests/robustness.py [--quick | --full] [--out bench/results/robustness.md] [--seed 0]

1. Input classes: zero-byte files, text and images named as videos, clips truncated at several points, a seeded fuzz
   of the real clips in ../shared/data/clips (synthetic clips written by `write_video` where ../shared is absent),
   headers that lie about the frame count, 1-frame, grayscale, huge-frame and very long clips, odd file names.
   Each file goes through the API (`load_video`, in a worker process so that a decoder crash or hang is counted,
   not suffered; then all at once through `VideoClassifier.predict(..., on_error="skip")`) and through the CLI
   (`video-classifier predict MODEL_DIR FILE`, one file a call, and many files a call). A file must be decoded or
   refused with a clear error: a `VideoError` naming the file (API), exit code 1 with a one-line message naming it
   (CLI). Anything else is counted against the library: another exception (a traceback), a process killed by a
   signal (a crash), or no answer within the time limit (a hang).
2. Kill -9 trials: `video-classifier extract ... --cache-dir` and `video-classifier train ... --cache-dir` killed at
   random points, then run again: the rerun completes, finished work is not redone (cache entries keep their inode
   and mtime), a damaged entry is never read back as good, the results equal an unbroken run's, and the bundle in
   the model folder stays loadable throughout. The kill -9 trials of saving are tests/test_bundle_kill.py's; the
   full run runs them too and reports their line.

`tests/test_robustness.py` runs a small version of each part in `make test`; `make robustness` runs the full suite.
"""
from __future__ import annotations
import argparse, collections, datetime, json, os, platform, random, re, select, shutil, signal, subprocess, sys, tempfile, time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDEO_CLASSIFIER_SHARED", ROOT.parent/"shared"))
REAL_CLIPS = sorted((SHARED/"data"/"clips").glob("*/*/*.*"))
CLI = Path(sys.executable).parent/"video-classifier"
EXTRACTOR = dict(backbone="mobilenet", alpha=0.25, img_size=32, weights=None, runtime="tf", precision="fp32")
FEATURE_ARGS = ["--backbone", "mobilenet", "--alpha", "0.25", "--weights", "none", "--img-size", "32", "--seq-len", "8"]
SEQ_LEN = 8  # frames kept per clip, everywhere in the suite
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # this process builds a model too
OUTCOMES = ("decoded", "refused", "unclear", "traceback", "crash", "hang")  # the first two are right, the rest are findings
BAD = OUTCOMES[2:]

# ---------------------------------------------------------------------------------------------- input classes

@dataclass
class Case:
    "One input file: its class, its path and what was done to it."
    cls: str  # Input class (a row of the table)
    path: Path  # The file (or link, folder, FIFO...)
    note: str = ""  # How it was made: the mutation, the cut, the lie

def source_clips(folder: Path, count: int = 4) -> list[Path]:
    "The real clips (.avi and .mp4), or where ../shared is absent, `count` synthetic clips of each kind written here."
    if REAL_CLIPS: return REAL_CLIPS
    from video_classifier.data import render_synthetic_clip, SYNTHETIC_CLASSES
    out = []
    for k in range(count):
        frames = render_synthetic_clip(SYNTHETIC_CLASSES[k % len(SYNTHETIC_CLASSES)], np.random.default_rng(k), 40, (176, 144))
        out += [_write(folder/f"synthetic{k}.{ext}", frames) for ext in ("avi", "mp4")]
    return out

def _write(path: Path, frames: np.ndarray, fps: float = 25) -> Path:
    from video_classifier.data import write_video
    return write_video(path, frames, fps)

MUTATIONS = ("bit_flips", "zero_run", "random_run", "truncate", "duplicate_chunk", "delete_chunk", "header_field")
_TAGS = re.compile(rb"RIFF|LIST|avih|strh|strf|movi|idx1|00dc|ftyp|moov|mvhd|trak|tkhd|mdhd|hdlr|stsd|stts|stss|stsz|stsc|stco|mdat|avcC|mp4v|esds")

def mutate(
    data: bytes,  # A clip's bytes
    kind: str,  # One of `MUTATIONS`
    rng: random.Random,  # Seeded source of the mutation
) -> bytes:
    "`data` damaged one way: flipped bits, a zeroed or random run, a cut, a chunk copied or removed, a header field overwritten."
    b, n = bytearray(data), len(data)
    where = lambda: rng.randrange(min(n, 4096)) if rng.random() < 0.5 else rng.randrange(n)  # half in the headers
    length = lambda: rng.choice((1, 4, 16, 256, 4096, 65536))
    if kind == "bit_flips":
        for _ in range(rng.choice((1, 2, 8, 64, 512))): i = where(); b[i] ^= 1 << rng.randrange(8)
    elif kind == "zero_run": i = where(); b[i:i + length()] = bytes(len(b[i:i + length()]))
    elif kind == "random_run": i, m = where(), length(); b[i:i + m] = rng.randbytes(len(b[i:i + m]))
    elif kind == "truncate": del b[rng.randrange(n):]
    elif kind == "duplicate_chunk": i, j, m = where(), rng.randrange(n), length(); b[j:j] = b[i:i + m]
    elif kind == "delete_chunk": i = where(); del b[i:i + length()]
    elif kind == "header_field":  # a size or the first fields of a RIFF chunk or an MP4 box: counts, durations, offsets
        tags = [m.start() for m in _TAGS.finditer(data)] or [0]
        for _ in range(rng.choice((1, 1, 2, 4))):
            off = min(max(rng.choice(tags) + rng.choice((-4, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40)), 0), n - 4)
            value = rng.choice((0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.getrandbits(32), rng.getrandbits(16)))
            b[off:off + 4] = value.to_bytes(4, rng.choice(("little", "big")))
    else: raise ValueError(f"mutation {kind!r}: use one of {MUTATIONS}")
    return bytes(b)

def fuzz(
    sources: list[Path],  # Clips to mutate (.avi and .mp4), taken in turn
    folder: Path,  # Where the mutants are written
    count: int,  # How many
    seed: int = 0,  # Same seed, same mutants
) -> list[Case]:
    "`count` seeded mutants of `sources`, the kinds of `MUTATIONS` in turn."
    folder.mkdir(parents=True, exist_ok=True)
    data, cases = {p: p.read_bytes() for p in sources}, []
    for k in range(count):
        src, kind = sources[(k // len(MUTATIONS)) % len(sources)], MUTATIONS[k % len(MUTATIONS)]  # every kind on every clip
        rng = random.Random(f"{seed}/{k}")
        path = folder/f"fuzz{k:04d}_{kind}{src.suffix}"
        path.write_bytes(mutate(data[src], kind, rng))
        cases.append(Case("fuzz", path, f"{kind} of {src.name}"))
    return cases

def _lie_avi(data: bytes, frames: int) -> bytes:
    "An AVI whose main header (avih) and stream header (strh) say it has `frames` frames."
    b = bytearray(data)
    for tag, offset in ((b"avih", 8 + 16), (b"strh", 8 + 32)):  # dwTotalFrames; dwLength
        i = data.find(tag)
        if i >= 0: b[i + offset:i + offset + 4] = frames.to_bytes(4, "little")
    return bytes(b)

def _lie_mp4(data: bytes, factor: float) -> bytes:
    "An MP4 whose movie and track durations (mvhd, mdhd; version 0) are `factor` times what they are."
    b = bytearray(data)
    for tag in (b"mvhd", b"mdhd"):
        i = data.find(tag)
        if i >= 0 and data[i + 4] == 0:  # version 0: creation, modification, timescale, duration (4 bytes each)
            at = i + 4 + 4 + 12
            b[at:at + 4] = min(int(int.from_bytes(data[at:at + 4], "big") * factor), 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(b)

def input_classes(
    folder: Path,  # An empty scratch folder
    fuzz_count: int = 1000,  # Mutants of the real clips
    long_frames: int = 20000,  # Length of the very long clip
    seed: int = 0,  # Seeds the fuzz and the synthetic frames
) -> list[Case]:
    "Every input class of the suite, written into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_clips(folder/"sources")
    avi, mp4 = next(p for p in sources if p.suffix == ".avi"), next(p for p in sources if p.suffix == ".mp4")
    rng, cases = np.random.default_rng(seed), []
    add = lambda cls, path, note="": cases.append(Case(cls, Path(path), note))
    frames = lambda n, h=48, w=64: rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    d = folder/"classes"; d.mkdir()
    for ext in ("avi", "mp4"): (d/f"empty.{ext}").touch(); add("zero-byte", d/f"empty.{ext}")
    (d/"text.avi").write_text("This is not a video.\n" * 200); add("not a video", d/"text.avi", "text")
    (d/"table.mp4").write_text("path,label\na.avi,walk\n"); add("not a video", d/"table.mp4", "CSV text")
    (d/"random.avi").write_bytes(random.Random(seed).randbytes(65536)); add("not a video", d/"random.avi", "64 KiB of random bytes")
    import cv2
    (d/"image.mp4").write_bytes(cv2.imencode(".png", frames(1)[0])[1].tobytes()); add("not a video", d/"image.mp4", "a PNG image")
    (d/"image.avi").write_bytes(cv2.imencode(".jpg", frames(1)[0])[1].tobytes()); add("not a video", d/"image.avi", "a JPEG image")
    (d/"page.avi").write_text("<!doctype html><title>404 Not Found</title>"); add("not a video", d/"page.avi", "an HTML error page")
    for src in (avi, mp4):
        data = src.read_bytes()
        for cut in (16, 512, 4096, len(data)//10, len(data)//2, len(data)*9//10, len(data) - 1):
            p = d/f"cut{cut}_{src.name}"; p.write_bytes(data[:cut]); add("truncated", p, f"first {cut:,} of {len(data):,} bytes of {src.name}")
    cases += fuzz(sources, folder/"fuzz", fuzz_count, seed)
    for n in (0, 1, 3, 100000, 0x7FFFFFFF):
        p = d/f"lie{n}_{avi.name}"; p.write_bytes(_lie_avi(avi.read_bytes(), n)); add("header lies about frame count", p, f"{avi.suffix} says {n} frames")
    for factor in (0, 0.1, 10, 1e6):
        p = d/f"lie{factor}_{mp4.name}"; p.write_bytes(_lie_mp4(mp4.read_bytes(), factor)); add("header lies about frame count", p, f"{mp4.suffix} duration x{factor}")
    for ext in ("avi", "mp4"):
        add("1 frame", _write(d/f"one.{ext}", frames(1)))
        add("grayscale", _write(d/f"gray.{ext}", frames(12)[..., 0]), "written as grayscale")
    add("huge frames", _write(d/"uhd.mp4", frames(3, 2160, 3840)), "3840x2160")
    add("huge frames", _write(d/"8k.mp4", frames(2, 4320, 7680)), "7680x4320")
    add("huge frames", _write(d/"tall.avi", frames(4, 2048, 16)), "16x2048")
    add("huge frames", _write(d/"tiny.avi", frames(4, 2, 2)), "2x2")
    small = np.repeat(frames(50, 24, 32), long_frames // 50, axis=0)
    add("very long", _write(d/"long.avi", small), f"{len(small):,} frames"); add("very long", _write(d/"long.mp4", small), f"{len(small):,} frames")
    o = folder/"names"; o.mkdir()
    for name in ("舞蹈 vidéo ☃.avi", "with space.mp4", "a%d.avi", "b%03d.mp4", "-leading-dash.avi", "new\nline.avi", "quote\"'s.avi",
                 "semi;colon $(false) `x`.avi", "x" * 240 + ".avi", "UPPER.AVI", "avi_named.mp4", "no_extension"):
        shutil.copy(avi, o/name); add("odd file names", o/name, repr(name) if len(name) < 40 else f"{len(name)}-character name")
    os.symlink(mp4, o/"link.mp4"); add("odd file names", o/"link.mp4", "a symbolic link")
    os.symlink(o/"gone.avi", o/"dangling.avi"); add("odd file names", o/"dangling.avi", "a dangling link")
    (o/"folder.avi").mkdir(); add("odd file names", o/"folder.avi", "a folder")
    os.mkfifo(o/"fifo.avi"); add("odd file names", o/"fifo.avi", "a FIFO")
    add("odd file names", o/"missing.avi", "no such file")
    return cases

# ---------------------------------------------------------------------------------------------- running the files

@dataclass
class Outcome:
    "What became of one file."
    status: str  # One of `OUTCOMES`
    message: str = ""  # The error, the traceback, or the frames decoded
    seconds: float = 0.0
    noise: str = ""  # What else the CLI printed on stderr (decoder messages), besides its own message

def _names(message: str, path: Path) -> bool:
    "Whether an error message names the file."
    return str(path) in message or path.name in message

def _decode(path: str) -> dict:
    "Decode one file as the API does (in the worker process)."
    import traceback
    from video_classifier.frames import VideoError, load_video
    try: return dict(status="decoded", message=f"{len(load_video(path, SEQ_LEN, (32, 32), 'uniform'))} frames")
    except VideoError as e: return dict(status="refused" if _names(str(e), Path(path)) else "unclear", message=str(e))
    except Exception: return dict(status="traceback", message=traceback.format_exc())

def decode_worker():
    "A worker process: read JSON paths a line from stdin, decode each, answer a JSON line."
    for line in sys.stdin: print(json.dumps(_decode(json.loads(line))), flush=True)

class Decoder:
    "Decodes files one at a time in a worker process, restarting it after a crash or a hang."
    def __init__(self, timeout: float = 120): self.timeout, self.proc = timeout, None

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--decode-worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, errors="replace", env=ENV)

    def __call__(self, path: Path) -> Outcome:
        if self.proc is None or self.proc.poll() is not None: self._start()
        start = time.perf_counter()
        self.proc.stdin.write(json.dumps(str(path)) + "\n"); self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else None
        secs = time.perf_counter() - start
        if line: return Outcome(**json.loads(line), seconds=secs)
        if line is None: self.close(); return Outcome("hang", f"no answer in {self.timeout:.0f} s", secs)
        code = self.proc.wait(); self.proc = None
        return Outcome("crash", f"the worker died with exit code {code}" + (f" ({signal.Signals(-code).name})" if code < 0 else ""), secs)

    def close(self):
        if self.proc: self.proc.kill(); self.proc.wait(); self.proc = None

def make_model_dir(folder: Path) -> Path:
    "A tiny untrained classifier bundle (random MobileNet at 32x32) for the CLI and the batch API to predict with."
    from video_classifier.model import get_sequence_model
    from video_classifier.predict import VideoClassifier
    from video_classifier.runtimes import make_extractor
    dim = make_extractor(**EXTRACTOR).output_shape[-1]
    return VideoClassifier(get_sequence_model(2, SEQ_LEN, dim), ["walk", "run"], EXTRACTOR).save(folder)

def _run(cmd: list, timeout: float, **kw) -> tuple[int | None, str, str, float]:
    "Run `cmd`: (exit code or None on a timeout, stdout, stderr, seconds)."
    start = time.perf_counter()
    try: p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace", timeout=timeout, env=ENV, **kw)
    except subprocess.TimeoutExpired as e: return None, str(e.stdout or ""), str(e.stderr or ""), time.perf_counter() - start
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - start

def cli_one(model_dir: Path, path: Path, cache: Path, timeout: float = 300) -> Outcome:
    "`video-classifier predict MODEL_DIR FILE`: decoded (exit 0, the file ranked), refused (exit 1 naming it), or a finding."
    code, out, err, secs = _run([CLI, "predict", model_dir, path, "--cache-dir", cache], timeout)
    if code is None: return Outcome("hang", f"no exit in {timeout:.0f} s", secs)
    if code < 0: return Outcome("crash", f"killed by {signal.Signals(-code).name}", secs)
    if "Traceback" in out + err: return Outcome("traceback", err[-2000:], secs)
    if code == 0 and str(path) in out: return Outcome("decoded", out.strip().splitlines()[-1], secs, noise=err.strip())
    last = err.strip().splitlines()[-1] if err.strip() else ""
    own = err[err.find("video-classifier predict: "):] if "video-classifier predict: " in err else ""
    if code == 1 and own and _names(own, path): return Outcome("refused", own.strip(), secs, noise=err[:len(err) - len(own)].strip())
    return Outcome("unclear", f"exit {code}: {last}", secs)

def cli_batch(model_dir: Path, paths: list[Path], cache: Path, expected: dict, timeout: float = 1800) -> dict:
    """`video-classifier predict MODEL_DIR FILES...` (with `--skip-bad` when the CLI has it): a whole-run result.

    `expected` maps each path to the API's outcome. Without --skip-bad, one bad file fails the call: exit 1, naming
    every bad file and no good one. With it: exit 0, a ranking for each good file, a warning naming each bad one."""
    skip = "--skip-bad" in _run([CLI, "predict", "--help"], 120)[1]
    code, out, err, secs = _run([CLI, "predict", model_dir, *paths, "--cache-dir", cache, *(["--skip-bad"] if skip else [])], timeout)
    bad = [p for p in paths if expected[p] != "decoded"]
    wrong = [p for p in paths if (p in bad) != (_names(err, p) and not (skip and str(p) in out))] if code in (0, 1) else []
    status = ("hang" if code is None else "crash" if code < 0 else "traceback" if "Traceback" in out + err else
              "ok" if code == (0 if skip or not bad else 1) and not wrong else "unclear")
    return dict(status=status, code=code, files=len(paths), bad=len(bad), misreported=[str(p) for p in wrong[:5]], skip_bad=skip, seconds=secs,
                tail=err.strip()[-300:] if status != "ok" else "")

def api_batch(model_dir: Path, paths: list[Path], cache: Path, timeout: float = 1800) -> dict:
    "`VideoClassifier.predict(paths, on_error='skip')` in a child process: the paths it ranked, the warning, or what went wrong."
    with tempfile.TemporaryDirectory() as tmp:
        listing, result = Path(tmp)/"paths.json", Path(tmp)/"result.json"
        listing.write_text(json.dumps([str(p) for p in paths]))
        code, _, err, secs = _run([sys.executable, __file__, "--predict-batch", model_dir, listing, result, cache], timeout)
        if code == 0: return {**json.loads(result.read_text()), "seconds": secs}
    return dict(status="hang" if code is None else "crash" if code < 0 else "traceback", code=code, error=err[-2000:], seconds=secs)

def predict_batch(model_dir: str, listing: str, result: str, cache: str):
    "In the child process of `api_batch`: predict every file with on_error='skip' and write what happened."
    import warnings
    from video_classifier.predict import load_classifier
    paths = json.loads(Path(listing).read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load_classifier(model_dir).predict(paths, cache_dir=cache, on_error="skip")
    said = "\n".join(str(w.message) for w in caught if "skipped" in str(w.message))
    Path(result).write_text(json.dumps(dict(status="ok", ranked=sorted(set(table.video)), warning=said)))

def check_api_batch(batch: dict, paths: list[Path], expected: dict) -> dict:
    "Compare the batch prediction with the one-file decodes: every decoded file ranked, every refused one named in the warning."
    if batch["status"] != "ok": return batch
    ranked = set(batch["ranked"])
    wrong = [p for p in paths if (str(p) in ranked) != (expected[p] == "decoded") or (expected[p] != "decoded" and not _names(batch["warning"], p))]
    return dict(status="ok" if not wrong else "unclear", files=len(paths), ranked=len(ranked), misreported=[str(p) for p in wrong[:5]],
                seconds=batch["seconds"])

def crashing_read(path, *args, **kwargs):
    "A reader like `load_video` that kills its own process (SIGSEGV) on a file whose name holds 'crash', as a decoder bug would."
    if "crash" in Path(path).name: os.kill(os.getpid(), signal.SIGSEGV)
    from video_classifier.frames import load_video
    if not args and not kwargs: kwargs = dict(max_frames=SEQ_LEN, resize=(32, 32), sampling="uniform")  # called with the path alone
    return load_video(path, *args, **kwargs)

def crash_containment(folder: Path) -> dict | None:
    """The clip reader of `extract_features` (`_read_ahead`) over good clips and one whose reading kills its process: the run
    must go on, and fail that file alone with a VideoError naming it. None where the reader runs in threads (no containment)."""
    import inspect
    from video_classifier import features
    from video_classifier.frames import VideoError
    from robustness import crashing_read  # by its module's name, so that the worker process can unpickle it
    if "read" not in inspect.signature(features._read_ahead).parameters or not hasattr(features, "_ReaderProcess"): return None
    clips = [_write(folder/f"{name}.avi", np.random.default_rng(k).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8))
             for k, name in enumerate(["good0", "crash1", "good2", "crash3", "good4"])]
    got = dict(features._read_ahead(clips, crashing_read))
    errors = {i: f"{type(e).__name__}: {e}" for i, e in got.items() if isinstance(e, Exception)}
    ok = (sorted(got) == list(range(len(clips))) and sorted(errors) == [1, 3]
          and all(isinstance(got[i], VideoError) and clips[i].name in str(got[i]) and "crashed" in str(got[i]) for i in (1, 3))
          and all(isinstance(got[i], np.ndarray) and len(got[i]) for i in (0, 2, 4)))
    return dict(ok=ok, read=[i for i, v in got.items() if isinstance(v, np.ndarray)], errors=errors)

# ---------------------------------------------------------------------------------------------- kill -9 trials

def synthetic_dataset(folder: Path, per_class: int = 10, test_per_class: int = 3) -> Path:
    "A small dataset of two synthetic classes in the tutorial layout, short clips."
    from video_classifier.data import make_synthetic_dataset
    return make_synthetic_dataset(folder, per_class, test_per_class, seed=0, classes=("Growing", "Shrinking"))

def _entries(cache: Path) -> dict[str, tuple[int, int]]:
    "Feature cache entries: path -> (inode, mtime_ns)."
    return {str(p.relative_to(cache)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("??/*.npz")}

def _arrays(cache: Path) -> dict[str, np.ndarray]:
    "Feature cache entries: path -> features."
    out = {}
    for p in cache.glob("??/*.npz"):
        with np.load(p) as z: out[str(p.relative_to(cache))] = z["features"]
    return out

def _kill_when(proc: subprocess.Popen, ready, extra: float, timeout: float = 600) -> bool:
    "SIGKILL `proc` `extra` seconds after `ready()` first holds; False when it ended first."
    start = time.perf_counter()
    while not ready() and proc.poll() is None and time.perf_counter() - start < timeout: time.sleep(0.01)
    time.sleep(extra)
    if proc.poll() is not None: return False
    proc.send_signal(signal.SIGKILL); proc.wait()
    return True

@dataclass
class Trials:
    "Tally of a kind of kill -9 trial."
    kind: str
    trials: int = 0
    killed: int = 0  # trials whose process was still running when the kill came
    reruns_completed: int = 0
    recomputed: int = 0  # finished results rewritten by a rerun (must be 0)
    damaged_injected: int = 0  # entries damaged on purpose before a rerun
    damaged_used: int = 0  # damaged results read back as good (must be 0)
    unequal: int = 0  # reruns whose results differ from an unbroken run's (must be 0)
    bundle_unloadable: int = 0  # moments the model folder did not load (must be 0)
    leftovers: int = 0  # temporary files of killed writes still there after the rerun (harmless: never read)
    seconds: float = 0.0
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool: return self.trials and not (self.problems or self.recomputed or self.damaged_used or self.unequal or self.bundle_unloadable)

def extraction_trials(
    work: Path,  # Scratch folder
    trials: int = 20,  # How many kills
    seed: int = 0,  # Seeds the moments of the kills
) -> Trials:
    """`video-classifier extract DATA --split all --cache-dir C`, killed with SIGKILL once a random number of clips is done
    (plus a random fraction of a second, so that some kills land in a write), then run again to the end."""
    start, rng, data = time.perf_counter(), random.Random(seed), synthetic_dataset(work/"data")
    cmd = lambda cache: [CLI, "extract", data, "--split", "all", "--cache-dir", cache, *FEATURE_ARGS]
    ref = work/"reference"
    code, _, err, _ = _run(cmd(ref), 900)
    if code != 0: raise RuntimeError(f"the unbroken extraction failed (exit {code}):\n{err[-2000:]}")
    reference, t = _arrays(ref), Trials("extraction")
    for k in range(trials):
        cache, t.trials = work/f"cache{k}", t.trials + 1
        with open(work/f"extract{k}.err", "w") as errf:
            proc = subprocess.Popen([str(c) for c in cmd(cache)], stdout=subprocess.DEVNULL, stderr=errf, env=ENV)
        target = rng.randrange(len(reference))
        t.killed += _kill_when(proc, lambda: len(list(cache.glob("??/*.npz"))) >= target, rng.uniform(0, 0.1))
        before = _entries(cache)
        damaged = None
        if (k % 2 == 1 or trials == 1) and before:  # every other trial (or the only one): damage a finished entry, as a disk might
            damaged = rng.choice(sorted(before)); f = cache/damaged
            f.write_bytes(f.read_bytes()[:rng.randrange(1, f.stat().st_size)]); before[damaged] = None; t.damaged_injected += 1
        code, _, err, _ = _run(cmd(cache), 900)
        if code != 0: t.problems.append(f"trial {k}: the rerun failed (exit {code}): {err.strip()[-300:]}"); continue
        t.reruns_completed += 1
        after, arrays = _entries(cache), _arrays(cache)
        t.leftovers += len(list(cache.rglob("*.tmp")))
        t.recomputed += sum(after.get(name) != st for name, st in before.items() if st is not None)
        if damaged and after.get(damaged) is None: t.problems.append(f"trial {k}: the damaged entry {damaged} was removed, not computed again")
        if damaged and damaged in arrays and not np.array_equal(arrays[damaged], reference.get(damaged)): t.damaged_used += 1
        if arrays.keys() != reference.keys() or any(not np.array_equal(arrays[n], reference[n]) for n in reference): t.unequal += 1
        shutil.rmtree(cache)
    t.seconds = time.perf_counter() - start
    return t

def resumable_training() -> bool:
    "Whether this version of the library resumes an interrupted training (train_classifier keeps state under cache_dir/training)."
    import video_classifier.train as train
    return hasattr(train, "fit_sequence_model")

def _weights(model_dir: Path) -> list[np.ndarray]:
    "The sequence model's weights in a bundle."
    from video_classifier.predict import load_classifier
    return [np.asarray(w) for w in load_classifier(model_dir).model.get_weights()]

def training_trials(
    work: Path,  # Scratch folder
    trials: int = 20,  # How many kills
    seed: int = 0,  # Seeds the moments of the kills
    epochs: int = 30,  # Epochs of each training
) -> Trials:
    """`video-classifier train DATA MODEL_DIR --cache-dir C` over an older bundle, killed with SIGKILL at a random moment of its training, then
    run again: the rerun ends with an unbroken run's weights, the clips' features are not computed again, the state
    folder is gone once the classifier is saved, and MODEL_DIR loads at every kill (the previous bundle, or the new one)."""
    start, rng, data = time.perf_counter(), random.Random(seed), synthetic_dataset(work/"data")
    cache, model_dir = work/"cache", work/"model"
    cmd = lambda out, s=0: [CLI, "train", data, out, "--cache-dir", cache, *FEATURE_ARGS, "--epochs", epochs, "--batch-size", 4, "--seed", s]
    make_model_dir(model_dir)  # the previous bundle, another classifier
    previous, state = _weights(model_dir), cache/"training"
    shutil.copytree(model_dir, work/"previous")  # put back before each trial: the bundle a kill must never lose
    with open(work/"reference.err", "w") as errf:  # an unbroken run (extracting the features), timing its training phase
        proc = subprocess.Popen([str(c) for c in cmd(work/"reference")], stdout=subprocess.DEVNULL, stderr=errf, env=ENV)
        while proc.poll() is None and not (state.is_dir() and any(state.rglob("*"))): time.sleep(0.01)
        began = time.perf_counter()
        code = proc.wait()
    if code != 0: raise RuntimeError(f"the unbroken training failed (exit {code}):\n{(work/'reference.err').read_text()[-2000:]}")
    phase, reference, t = time.perf_counter() - began, _weights(work/"reference"), Trials("training")
    for k in range(trials):
        t.trials += 1
        features = _entries(cache)
        shutil.rmtree(model_dir); shutil.copytree(work/"previous", model_dir)
        with open(work/f"train{k}.err", "w") as errf:
            proc = subprocess.Popen([str(c) for c in cmd(model_dir)], stdout=subprocess.DEVNULL, stderr=errf, env=ENV)
        t.killed += _kill_when(proc, lambda: state.is_dir() and any(state.rglob("*")), rng.uniform(0, phase))
        saved = [p for p in state.rglob("*") if p.is_file()] if state.is_dir() else []
        try:
            w = _weights(model_dir)
            if not (all(np.array_equal(a, b) for a, b in zip(w, previous)) or all(np.array_equal(a, b) for a, b in zip(w, reference))):
                t.problems.append(f"trial {k}: MODEL_DIR holds neither the previous nor the new classifier")
        except Exception as e: t.bundle_unloadable += 1; t.problems.append(f"trial {k}: MODEL_DIR does not load: {type(e).__name__}: {e}")
        if (k % 2 == 1 or trials == 1) and saved:  # every other trial (or the only one): damage a file of the training state
            f = rng.choice(saved); f.write_bytes(f.read_bytes()[:rng.randrange(0, max(f.stat().st_size, 1))]); t.damaged_injected += 1
        code, _, err, _ = _run(cmd(model_dir), 900)
        if code != 0: t.problems.append(f"trial {k}: the rerun failed (exit {code}): {err.strip()[-300:]}"); continue
        t.reruns_completed += 1
        t.recomputed += sum(_entries(cache).get(n) != st for n, st in features.items())
        if state.is_dir() and any(p.is_file() for p in state.rglob("*")): t.problems.append(f"trial {k}: training state left in {state} after the save")
        w = _weights(model_dir)
        if len(w) != len(reference) or any(not np.array_equal(a, b) for a, b in zip(w, reference)):
            t.unequal += 1; t.damaged_used += bool((k % 2 == 1 or trials == 1) and saved)
    t.seconds = time.perf_counter() - start
    return t

def saving_trials() -> dict:
    "Run tests/test_bundle_kill.py (20 kill -9 trials of `save_classifier`) and read its summary line."
    code, out, err, secs = _run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(ROOT/"tests"/"test_bundle_kill.py")], 1800, cwd=ROOT)
    m = re.search(r"(\d+) trials: (\d+) old, (\d+) new, (\d+) damaged \((\d+) put back", out)
    if not m: return dict(ok=False, line=(out + err).strip()[-500:], seconds=secs)
    trials, old, new, damaged, restored = map(int, m.groups())
    return dict(ok=code == 0 and damaged == 0, trials=trials, old=old, new=new, damaged=damaged, restored=restored, seconds=secs)

def properties() -> dict:
    "Run tests/test_properties.py with many examples (hypothesis profile `robustness`) and read pytest's summary."
    env = {**ENV, "HYPOTHESIS_PROFILE": "robustness"}
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT/"tests"/"test_properties.py")],
                       capture_output=True, text=True, errors="replace", env=env, cwd=ROOT)
    summary = next((l.strip("= ") for l in reversed(p.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", l)), p.stdout[-300:])
    failed = re.findall(r"^FAILED (\S+)", p.stdout, re.M)
    return dict(ok=p.returncode == 0, summary=summary, failed=failed, seconds=time.perf_counter() - start, tail="" if p.returncode == 0 else p.stdout[-3000:])

# ---------------------------------------------------------------------------------------------- the table

def tally(cases: list[Case], outcomes: dict) -> dict[str, collections.Counter]:
    "Outcome counts per input class, in the order the classes first appear."
    table = {}
    for c in cases:
        if c.path in outcomes: table.setdefault(c.cls, collections.Counter())[outcomes[c.path].status] += 1
    return table

def _table_md(api: dict, cli: dict) -> str:
    head = ("| input class | tried | decoded | refused, clear error | unclear error | tracebacks | crashes | hangs | CLI tried | CLI decoded "
            "| CLI refused (exit 1) | CLI other |\n|---|" + "---:|" * 11)
    rows = []
    for cls, c in api.items():
        k = cli.get(cls, collections.Counter())
        rows.append(f"| {cls} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES)
                    + f" | {sum(k.values()) or '-'} | {k['decoded'] if k else '-'} | {k['refused'] if k else '-'} | {sum(k[o] for o in BAD) if k else '-'} |")
    total, ktot = sum(api.values(), collections.Counter()), sum(cli.values(), collections.Counter())
    rows.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(f"**{total[o]}**" for o in OUTCOMES)
                + f" | **{sum(ktot.values())}** | **{ktot['decoded']}** | **{ktot['refused']}** | **{sum(ktot[o] for o in BAD)}** |")
    return "\n".join([head, *rows])

def _fuzz_md(cases: list[Case], outcomes: dict) -> str:
    by = collections.defaultdict(collections.Counter)
    for c in cases:
        if c.cls == "fuzz" and c.path in outcomes: by[(c.note.split(" of ")[0], c.path.suffix)][outcomes[c.path].status] += 1
    rows = [f"| {kind} | {ext} | {sum(n.values())} | {n['decoded']} | {n['refused']} | {sum(n[o] for o in BAD)} |" for (kind, ext), n in sorted(by.items())]
    return "| mutation | file | tried | decoded | refused, clear error | other |\n|---|---|---:|---:|---:|---:|\n" + "\n".join(rows)

def _trials_md(trials: list[Trials], saving: dict | None) -> str:
    rows = ["| kill -9 during | trials | killed mid-run | reruns completed | finished work redone | damaged on purpose | damaged read as good "
            "| results differ from an unbroken run | model folder unloadable | seconds |", "|---|" + "---:|" * 9]
    for t in trials:
        rows.append(f"| {t.kind} | {t.trials} | {t.killed} | {t.reruns_completed} | {t.recomputed} | {t.damaged_injected} | {t.damaged_used} "
                    f"| {t.unequal} | {t.bundle_unloadable} | {t.seconds:.0f} |")
    if saving and "trials" in saving:
        rows.append(f"| saving (tests/test_bundle_kill.py) | {saving['trials']} | {saving['trials']} | - | - | - | {saving['damaged']} | - "
                    f"| {saving['damaged']} (loaded: {saving['old']} old, {saving['new']} new; {saving['restored']} put back) | {saving['seconds']:.0f} |")
    return "\n".join(rows)

def _findings(cases: list[Case], outcomes: dict, extra: list[str]) -> list[str]:
    out = [f"- {c.cls}, {c.note or c.path.name}: **{outcomes[c.path].status}**: {outcomes[c.path].message.strip().splitlines()[-1][:300] if outcomes[c.path].message.strip() else ''}"
           for c in cases if c.path in outcomes and outcomes[c.path].status in BAD]
    return out + [f"- {e}" for e in extra]

# ---------------------------------------------------------------------------------------------- the run

def run(args) -> str:
    "Run the suite as `args` says and return the Markdown report."
    from video_classifier import __version__
    start, work = time.perf_counter(), Path(tempfile.mkdtemp(prefix="robustness-"))
    quick = not args.full
    try:
        cases = input_classes(work/"inputs", fuzz_count=args.fuzz or (60 if quick else 1000), long_frames=3000 if quick else 20000, seed=args.seed)
        print(f"{len(cases)} files in {len(set(c.cls for c in cases))} input classes", flush=True)
        decode, api = Decoder(), {}
        try:
            for i, c in enumerate(cases):
                api[c.path] = decode(c.path)
                if (i + 1) % 100 == 0: print(f"  API: {i + 1}/{len(cases)} files", flush=True)
        finally: decode.close()
        expected = {p: o.status for p, o in api.items()}
        model_dir = make_model_dir(work/"model")
        batch = check_api_batch(api_batch(model_dir, [c.path for c in cases], work/"cache"), [c.path for c in cases], expected)
        print(f"  API, all files in one predict(on_error='skip'): {batch['status']}", flush=True)
        per_class = 1 if quick else 2  # one-file CLI calls per class (each imports TensorFlow), the fuzz's more
        picked = [c for cls in dict.fromkeys(c.cls for c in cases) for c in [c for c in cases if c.cls == cls][:per_class * (1 + (cls == "fuzz"))]]
        cli = {c.path: cli_one(model_dir, c.path, work/"cache") for c in picked}
        print(f"  CLI: {len(cli)} one-file calls", flush=True)
        paths = [c.path for c in cases]
        size = 250
        batches = [cli_batch(model_dir, paths[i:i + size], work/"cache", expected) for i in range(0, len(paths), size)]
        print(f"  CLI: {len(batches)} many-file calls: {collections.Counter(b['status'] for b in batches)}", flush=True)
        trials = []
        if args.kill_trials:
            trials.append(extraction_trials(work/"extract", args.kill_trials, args.seed))
            print(f"  kill -9 during extraction: {trials[-1]}", flush=True)
            if resumable_training():
                trials.append(training_trials(work/"train", args.kill_trials, args.seed))
                print(f"  kill -9 during training: {trials[-1]}", flush=True)
        saving = saving_trials() if args.full else None
        if saving: print(f"  kill -9 during saving: {saving}", flush=True)
        crash = crash_containment(work/"crash")
        print(f"  a decoder crash: {crash}", flush=True)
        props = properties() if args.full else None
        if props: print(f"  property tests: {props['summary']}", flush=True)
    finally: shutil.rmtree(work, ignore_errors=True)
    api_table, cli_table = tally(cases, api), tally(cases, cli)
    extra = [f"CLI many-file call {i}: {b['status']} (exit {b['code']}, {b['bad']} bad of {b['files']}; misreported {b['misreported']}) {b['tail']}"
             for i, b in enumerate(batches) if b["status"] != "ok"]
    if batch["status"] != "ok": extra.append(f"API predict(on_error='skip') over all files: {batch}")
    extra += [p for t in trials for p in t.problems]
    if saving and not saving.get("ok"): extra.append(f"kill -9 during saving: {saving}")
    slowest = max(api.items(), key=lambda kv: kv[1].seconds)
    lines = [f"Robustness suite ({'quick' if quick else 'full'}), video_classifier {__version__}, {datetime.date.today()}, "
             f"{platform.machine()} ({os.cpu_count()} cores), {'real clips from ../shared' if REAL_CLIPS else 'synthetic clips (../shared absent)'}, "
             f"seed {args.seed}, {time.perf_counter() - start:.0f} s. Written by `python tests/robustness.py{' --full' if args.full else ''}`.",
             "", "**Input classes** (API: `load_video` a file at a time in a worker process; CLI: `video-classifier predict MODEL_DIR FILE`, "
             f"one file a call, the first {per_class} of each class and {2*per_class} of the fuzz):",
             "", _table_md(api_table, cli_table), "",
             f"All {len(cases)} files at once through `VideoClassifier.predict(..., on_error=\"skip\")`: **{batch['status']}** (each decoded file ranked, "
             f"each refused one named in the warning), and through `video-classifier predict MODEL_DIR FILES...` in {len(batches)} call(s) of up to {size} files"
             f"{' with --skip-bad' if batches and batches[0]['skip_bad'] else ' (the CLI has no --skip-bad: exit 1 naming every bad file, and no good one)'}: "
             f"**{sum(b['status'] == 'ok' for b in batches)} of {len(batches)} as expected**, none crashed or printed a traceback"
             f"{'' if all(b['status'] not in ('crash', 'traceback') for b in batches) else ' (NOT SO: see the findings)'}. "
             f"Slowest file: {slowest[1].seconds:.1f} s ({next(c for c in cases if c.path == slowest[0]).cls}).",
             "", "**The fuzz, by mutation** (seeded; each kind over the .avi and the .mp4 clips):", "", _fuzz_md(cases, api)]
    if trials or saving: lines += ["", "**Kill -9 trials**:", "", _trials_md(trials, saving)]
    if any(t.leftovers for t in trials): lines += ["", "Temporary files of writes cut short, still in the cache folder after the reruns (never read, never "
                                                   "removed): " + ", ".join(f"{t.kind} {t.leftovers}" for t in trials) + "."]
    if args.kill_trials and not resumable_training(): lines += ["", "Kill -9 during training: not run, as this version of the library does not resume an interrupted training."]
    lines += ["", "**A decoder crash** (a reader that kills its own process with SIGSEGV on two of five clips, given to the clip reader of "
              "`extract_features`): " + ("not run: this version reads clips in threads, so a crash ends the whole run" if crash is None else
                 f"{'contained' if crash['ok'] else 'NOT contained'}: clips {crash['read']} read; " + "; ".join(f"clip {i}: {e}" for i, e in crash["errors"].items()))]
    if crash is not None and not crash["ok"]: extra.append(f"a decoder crash was not contained: {crash}")
    if props:
        lines += ["", f"**Property tests** (tests/test_properties.py, hypothesis profile `robustness`: up to 400 examples a property): {props['summary']}."]
        if not props["ok"]: extra.append(f"property tests failed: {props['failed']}\n```\n{props['tail']}\n```")
    found = _findings(cases, api, extra) + [f"- CLI, {c.cls}, {c.note or c.path.name}: **{cli[c.path].status}**: {cli[c.path].message[-300:]}"
                                            for c in picked if cli[c.path].status in BAD]
    noisy = [c for c in picked if cli[c.path].noise]
    if noisy: lines += ["", f"{len(noisy)} of {len(picked)} one-file CLI calls printed the decoder's own messages on stderr besides the "
                        f"command's (e.g. for {noisy[0].note or noisy[0].path.name}: {cli[noisy[0].path].noise.splitlines()[0][:100].encode('ascii', 'backslashreplace').decode()!r})."]
    lines += ["", "**Findings**:" if found else "**Findings**: none.", *found]
    return ("\n".join(lines) + "\n").replace(str(work), "WORK")

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small run (the default): 60 mutations, 2 kill trials each")
    p.add_argument("--full", action="store_true", help="the full suite: 1,000 mutations, 20 kill -9 trials each")
    p.add_argument("--fuzz", type=int, default=0, help="number of mutations (default: 60 quick, 1000 full)")
    p.add_argument("--kill-trials", type=int, default=None, help="kill -9 trials each of extraction and training (default: 2 quick, 20 full)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the Markdown report here too")
    p.add_argument("--decode-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--predict-batch", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.decode_worker: return decode_worker()
    if args.predict_batch: return predict_batch(*args.predict_batch)
    if args.kill_trials is None: args.kill_trials = 20 if args.full else 2
    report = run(args)
    print(report)
    if args.out: args.out.parent.mkdir(parents=True, exist_ok=True); args.out.write_text(report)
    bad = re.search(r"\*\*Findings\*\*:\n", report)
    return 1 if bad else 0

if __name__ == "__main__": sys.exit(main())
