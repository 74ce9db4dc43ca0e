"Fixtures shared by the test files."
import contextlib, os, shutil
from pathlib import Path

import pytest

BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable")
HEADLESS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")  # as root, in a container, without a GPU
SHARED = Path(os.environ.get("VIDEO_CLASSIFIER_SHARED", Path(__file__).resolve().parents[2]/"shared"))
UCF = SHARED/"data"/"clips"/"ucf101"
SCENES = {"ApplyEyeMakeup": UCF/"ApplyEyeMakeup"/"v_ApplyEyeMakeup_g01_c01.avi",  # real footage, all 320x240 at 25 fps
          "HeadMassage": UCF/"HeadMassage"/"v_HeadMassage_g02_c05.avi",
          "Shotput": UCF/"Shotput"/"v_Shotput_g05_c02.avi"}
WEIGHTS = SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"  # the small real ImageNet weights


@pytest.fixture(scope="session")
def chromium():
    "Debian's chromium (tools/install_chromium.sh installs it): required as root or in CI, else the test skips."
    b = os.environ.get("CHROMIUM") or next((b for b in BROWSERS if os.access(b, os.X_OK)), None) or shutil.which("chromium")
    if b: return b
    why = "no Chromium found (run `bash tools/install_chromium.sh` as root, or set CHROMIUM=/path/to/chromium)"
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0): pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def launch_browser(chromium):
    "`with launch_browser(*args) as browser:` a headless Chromium driven by playwright, with more command-line `args`."
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the `dev` extra)")
    @contextlib.contextmanager
    def launch(*args: str):
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[*HEADLESS, *args])
            try: yield browser
            finally: browser.close()
    return launch


@pytest.fixture(scope="session")
def scenes_classifier():
    "A classifier of the three real clips of `SCENES`: 2 s windows all along each, the small real MobileNet at 96 px."
    if not all(p.exists() for p in SCENES.values()) or not WEIGHTS.exists():
        pytest.skip(f"real clips or weights not found under {SHARED} (../shared is absent)")
    import numpy as np
    from video_classifier.features import build_feature_extractor
    from video_classifier.frames import load_video
    from video_classifier.predict import VideoClassifier
    from video_classifier.train import run_experiment
    settings = dict(backbone="mobilenet", alpha=0.25, img_size=96, weights=str(WEIGHTS))
    T, step = 8, 6  # windows of 8 frames, every 6th: 2 s at 25 fps
    ex, vocab, X, y = build_feature_extractor(**settings), sorted(SCENES), [], []
    for i, label in enumerate(vocab):
        f = ex.predict(load_video(SCENES[label], resize=(96, 96)), batch_size=64, verbose=0)
        for start in range(0, len(f) - (T - 1) * step, 2):
            X.append(f[start:start + (T - 1) * step + 1:step])
            y.append(i)
    data, y = (np.stack(X), np.ones((len(X), T), bool)), np.array(y)
    exp = run_experiment(data, y, data, y, vocab, epochs=30, batch_size=16, progress=False)
    return VideoClassifier(exp.model, vocab, settings, feature_extractor=ex, clip_seconds=2.0)


@pytest.fixture(scope="session")
def ffmpeg():
    "Debian's ffmpeg (tools/install_ffmpeg.sh installs it when missing, as root): needed as root or in CI, else a skip."
    import subprocess
    script = Path(__file__).resolve().parents[1]/"tools"/"install_ffmpeg.sh"
    setup = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    b = os.environ.get("FFMPEG") or shutil.which("ffmpeg")
    if b: return b
    why = f"no ffmpeg found ({(setup.stdout + setup.stderr).strip() or 'tools/install_ffmpeg.sh said nothing'})"
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0): pytest.fail(why)
    pytest.skip(why)
