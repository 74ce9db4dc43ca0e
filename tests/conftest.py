"Fixtures shared by the test files."
import os, shutil

import pytest

BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable")


@pytest.fixture(scope="session")
def chromium():
    "Debian's chromium (tools/install_chromium.sh installs it): required as root or in CI, else the test skips."
    b = os.environ.get("CHROMIUM") or next((b for b in BROWSERS if os.access(b, os.X_OK)), None) or shutil.which("chromium")
    if b: return b
    why = "no Chromium found (run `bash tools/install_chromium.sh` as root, or set CHROMIUM=/path/to/chromium)"
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0): pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def ffmpeg():
    "Debian's ffmpeg (tools/install_ffmpeg.sh installs it when missing, as root): needed as root or in CI, else a skip."
    import subprocess
    from pathlib import Path
    script = Path(__file__).resolve().parents[1]/"tools"/"install_ffmpeg.sh"
    setup = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    b = os.environ.get("FFMPEG") or shutil.which("ffmpeg")
    if b: return b
    why = f"no ffmpeg found ({(setup.stdout + setup.stderr).strip() or 'tools/install_ffmpeg.sh said nothing'})"
    if os.environ.get("CI") or (hasattr(os, "geteuid") and os.geteuid() == 0): pytest.fail(why)
    pytest.skip(why)
