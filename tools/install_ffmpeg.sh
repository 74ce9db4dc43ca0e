#!/usr/bin/env bash
# Make sure ffmpeg is there for tests/test_watch.py and bench/live.py, which serve a clip as a live MPEG-TS stream over
# HTTP on 127.0.0.1 (`ffmpeg -re -i CLIP -f mpegts -listen 1 http://127.0.0.1:PORT/live.ts`).
# Debian's `ffmpeg` package, installed with apt-get when we are root and none is found.
# Exits 0 when ffmpeg is available (prints its path), 0 with a notice when not root (the tests then skip, naming
# why), and 1 when root and the install fails (CI must not pass without the live-stream tests).
set -uo pipefail

find_ffmpeg() {
  for b in "${FFMPEG:-}" /usr/bin/ffmpeg "$(command -v ffmpeg 2>/dev/null)"; do
    if [ -n "$b" ] && [ -x "$b" ]; then echo "$b"; return 0; fi
  done
  return 1
}

if b=$(find_ffmpeg); then echo "ffmpeg: $b"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install_ffmpeg.sh: no ffmpeg found and not root: install Debian's 'ffmpeg' (or set FFMPEG=/path) to run the live-stream tests"
  exit 0
fi
if ! command -v apt-get >/dev/null; then echo "install_ffmpeg.sh: no apt-get here to install ffmpeg" >&2; exit 1; fi
echo "installing Debian's ffmpeg (apt-get update, apt-get install -y ffmpeg)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "install_ffmpeg.sh: apt-get update failed" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null \
  || { echo "install_ffmpeg.sh: apt-get install ffmpeg failed" >&2; exit 1; }
b=$(find_ffmpeg) || { echo "install_ffmpeg.sh: ffmpeg installed but not found" >&2; exit 1; }
echo "ffmpeg: $b"
