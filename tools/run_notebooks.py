"""Execute notebooks in place, so that readers, the README and the docs see their outputs.

TensorFlow writes start-up and retracing messages to stderr that say nothing about the chapter; they are
dropped from the stored outputs. Usage: python tools/run_notebooks.py nbs/04_train.ipynb [...]
"""
import re, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} \d\d:\d\d|To enable the following instructions|"
                    r"WARNING:tensorflow:)")

def _quiet(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    "Drop TensorFlow's log lines from the printed outputs, and outputs left empty."
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = "".join(l for l in out["text"].splitlines(keepends=True) if not _NOISE.match(l))
                if not out["text"].strip(): continue
            kept.append(out)
        cell["outputs"] = kept
    return nb

def run(path: Path):
    "Execute one notebook in its own folder and store its quieted outputs."
    start, nb = time.perf_counter(), nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(_quiet(nb), path)
    print(f"{path}: executed in {time.perf_counter() - start:.0f} s")

if __name__ == "__main__":
    for p in sys.argv[1:]: run(Path(p))
