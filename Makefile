# Every target is self-sufficient on a fresh machine: it creates .venv and installs into it first.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: install demo test check-sync nbtest pytest export clean-nbs readme help robustness

help:
	@echo "make demo   - install, then train and predict on the embedded synthetic dataset (offline)"
	@echo "make test   - install, check notebooks and package are in sync, run every test"
	@echo "make install - only create $(VENV) and install the package with its dev tools"
	@echo "make scale  - single process vs Ray (1 and 2 local workers), projected to UCF101 and Kinetics-400 (~10 min, root)"
	@echo "make bench-live - watch on a live stream: latency, drops, CPU and memory over 10 min (~30 min, 2 cores)"
	@echo "make robustness - bad input of every kind, 1,000 mutations, kill -9 trials, many property examples (tens of minutes)"

# Installs the package in editable mode with the dev tools. TensorFlow comes from the `cpu`
# extra only when the environment has none yet (Colab and GPU machines keep their own).
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import tensorflow" 2>/dev/null; then extras=dev; else extras=cpu,dev; fi; \
	  echo "pip install -e .[$$extras,openvino,onnx,export,serve,ray]"; $(PY) -m pip install -q -e ".[$$extras,openvino,onnx,export,serve,ray]"
	@touch $@

demo: install
	$(BIN)/video-classifier demo

export: install
	$(BIN)/nbdev-export

clean-nbs: install
	$(BIN)/nbdev-clean

readme: install
	$(PY) tools/make_readme.py

# Fails when nbdev-export, nbdev-clean or the README build would change the working tree:
# on a clean clone that means the committed package, notebooks and README are out of date.
check-sync: install
	@before=$$(git status --porcelain; git diff | sha1sum); \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(PY) tools/make_readme.py >/dev/null; \
	after=$$(git status --porcelain; git diff | sha1sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "Out of sync: nbdev-export / nbdev-clean / tools/make_readme.py changed these files:"; \
	  git status --short; \
	  echo "Run 'make export clean-nbs readme' and commit the result."; exit 1; \
	fi; echo "notebooks, package and README are in sync"

nbtest: install
	$(BIN)/nbdev-test --n-workers 2

pytest: install
	$(BIN)/pytest -q tests/

test: install check-sync nbtest docs docs-browser live-ffmpeg pytest

# The docs site, offline, in _docs/: nbdev's processing of the notebooks (it runs the show_doc cells, nothing else
# is executed), rendered from the stored outputs by nbconvert (tools/build_docs.py). CI checks it (docs-test, in
# `make test` too) and .github/workflows/deploy.yaml publishes this very folder: the one docs site.
.PHONY: docs docs-browser docs-test
docs: install
	$(PY) tools/build_docs.py

# Headless Chromium for tests/test_docs.py: Debian's chromium, installed with apt-get when missing and root.
docs-browser:
	bash tools/install_chromium.sh

# Only the docs: build the site and load every page in the browser (make test runs this test too; the deploy
# workflow runs this target and publishes _docs/ when it passes).
docs-test: docs docs-browser
	$(BIN)/pytest -q tests/test_docs.py

# Debian's ffmpeg for tests/test_watch.py and bench/live.py (they serve clips as live streams on 127.0.0.1), installed with
# apt-get when missing and root. The tests' `ffmpeg` fixture runs the same script.
.PHONY: live-ffmpeg bench-live
live-ffmpeg:
	bash tools/install_ffmpeg.sh

# `watch` on a live stream served by ffmpeg at real time: decisions per second, latency, drops, CPU and memory, for InceptionV3
# and the small MobileNet, TensorFlow and --fast, at 320x240 and 640x480 (2 min each), and 10 min of the first for memory:
# about 30 minutes on 2 cores. Run it on an idle machine. Writes bench/results/live.md, which the watch chapter includes: commit it.
bench-live: install live-ffmpeg
	$(PY) bench/live.py --out bench/results/live.md

# Extraction at scale (the Ray chapter): the single process against Ray with 1 and 2 local workers, TensorFlow and
# OpenVINO int8, and a projection to full UCF101 and Kinetics-400. Needs root (each run is in a loopback-only network
# namespace); about 10 minutes on 2 cores. Writes bench/results/scale.md, which the Ray chapter includes: commit it.
.PHONY: scale
scale: install
	$(PY) bench/scale.py --out bench/results/scale.md

# Feature extraction side by side (the tutorial's loop, ours, its bounds, faster runtimes), then what each
# runtime and precision costs in accuracy on the real clips, then the timeline of 10- and 40-minute videos (about
# 20 minutes on 2 cores). Run it on an idle machine.
# Writes the Markdown tables that the README and the chapters include (bench/results/*.md): commit them.
.PHONY: bench
bench: install
	$(PY) bench/extraction.py --scaling --repeat 2 --out bench/results/extraction.md
	$(PY) bench/accuracy.py --out bench/results/accuracy.md
	$(PY) bench/timeline.py --out bench/results/timeline.md

# The exported classifier (ONNX, TFLite; fp32 and int8) against its bundle on the real-footage task: speed, accuracy,
# agreement, file sizes (a few minutes on 2 cores). Writes bench/results/export.md, which the export chapter and the
# README include: commit it.
.PHONY: bench-export
bench-export: install
	$(PY) bench/export.py --out bench/results/export.md

# The robustness suite (tests/robustness.py; its fast part is tests/test_robustness.py in `make test`): every class of
# bad input through the API and the CLI, 1,000 seeded mutations of the real clips, 20 kill -9 trials each of extraction,
# training and saving (tests/test_bundle_kill.py), and the property tests with up to 400 examples each. Takes about half
# an hour on 2 cores. Writes bench/results/robustness.md, which the robustness chapter includes: commit it.
robustness: install
	$(PY) tests/robustness.py --full --out bench/results/robustness.md
