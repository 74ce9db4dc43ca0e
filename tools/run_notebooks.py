"""Execute notebooks in place, so that readers, the README and the docs see their outputs.

Stored outputs are read by people, so they are cleaned before they are written: TensorFlow's start-up and
retracing messages and other libraries' warnings on stderr say nothing about the chapter and are dropped; progress-bar widgets (tqdm,
NNCF) keep no state in the notebook; and the scratch folders a chapter works in are shown as `tmp/`, not as
this machine's paths. `tests/test_notebooks.py` checks every stored output for all three.
Usage: python tools/run_notebooks.py nbs/06_train.ipynb [...]
"""
import re, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d|To enable the following instructions|"
                    r"WARNING:tensorflow:|\[\w+ @ 0x[0-9a-f]+\]|OpenCV: FFMPEG: )")  # TensorFlow's C++ log, FFmpeg's (through OpenCV) decoder messages
_WIDGET = "application/vnd.jupyter.widget-view+json"
_TMP = re.compile(r"/tmp/(tmp\w+|pytest-of-\w+/[\w-]+)")

_LIBRARY_WARNING = re.compile(r"^\S*/site-packages/\S+:\d+: \w+Warning: ")  # a library's warning, then its source line

def _text(value) -> str: return "".join(value) if isinstance(value, list) else value

def _drop_noise(text: str) -> str:
    "The lines of a stream that are neither TensorFlow's log lines nor another library's warnings (with their source line)."
    kept, skip_source = [], False
    for line in text.splitlines(keepends=True):
        if skip_source and line.startswith((" ", "\t")): skip_source = False; continue
        skip_source = bool(_LIBRARY_WARNING.match(line))
        if not (skip_source or _NOISE.match(line)): kept.append(line)
    return "".join(kept)

def _clean(out: dict) -> dict | None:
    "One output without TensorFlow's log lines, widget views or machine paths; None when nothing is left."
    if out.get("output_type") == "stream":
        text = _drop_noise(_text(out["text"]))
        if not text.strip(): return None
        out["text"] = _TMP.sub("tmp", text)
        return out
    data = out.get("data", {})
    if _WIDGET in data: return None  # a progress bar: its widget state is not stored, so it would show as nothing
    for mime in ("text/plain", "text/html", "text/markdown"):
        if mime in data: data[mime] = _TMP.sub("tmp", _text(data[mime]))
    return out

def _quiet(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    "Clean every code cell's outputs and drop the notebook's widget state."
    for cell in nb.cells:
        if cell.cell_type == "code": cell["outputs"] = [o for o in map(_clean, cell.get("outputs", [])) if o is not None]
    nb.metadata.pop("widgets", None)
    return nb

def run(path: Path):
    "Execute one notebook in its own folder and store its cleaned outputs."
    start, nb = time.perf_counter(), nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(_quiet(nb), path)
    print(f"{path}: executed in {time.perf_counter() - start:.0f} s")

if __name__ == "__main__":
    for p in sys.argv[1:]: run(Path(p))
