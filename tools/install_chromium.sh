#!/usr/bin/env bash
# Make sure a headless Chromium is there for tests/test_docs.py (the docs browser test).
# Debian's `chromium` package, installed with apt-get when we are root and no browser is found.
# Exits 0 when a browser is available (prints its path), 0 with a notice when not root (the test then
# skips, naming why), and 1 when root and the install fails (CI must not pass without the browser test).
set -uo pipefail

find_browser() {
  for b in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome /usr/bin/google-chrome-stable; do
    if [ -n "$b" ] && [ -x "$b" ]; then echo "$b"; return 0; fi
  done
  return 1
}

if b=$(find_browser); then echo "browser: $b"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium.sh: no Chromium found and not root: install Debian's 'chromium' (or set CHROMIUM=/path) to run the docs browser test"
  exit 0
fi
if ! command -v apt-get >/dev/null; then echo "install_chromium.sh: no apt-get here to install chromium" >&2; exit 1; fi
echo "installing Debian's chromium (apt-get update, apt-get install -y chromium)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "install_chromium.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
  || { echo "install_chromium.sh: apt-get install chromium failed" >&2; exit 1; }
b=$(find_browser) || { echo "install_chromium.sh: chromium installed but not found" >&2; exit 1; }
echo "browser: $b"
