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
