"""The benchmarks are not tests, but they run once here on tiny settings so that they cannot rot; and the Markdown they
write (`--out`) is checked the way the README and the chapters include it, with Quarto's include shortcode."""
import json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/"bench"/"results"


def _run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT/"bench"/script), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _tables(md: str) -> dict[str, list[list[str]]]:
    "The Markdown tables of `md` by their first header cell: header row, then body rows, each a list of cells."
    tables, rows = {}, []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"): rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows: tables[rows[0][0]] = [rows[0], *rows[2:]]; rows = []
    return tables


def _numbers(cells: list[str]) -> list[float]:
    "`cells` as numbers, failing on any that is not one."
    bad = [c for c in cells if not re.fullmatch(r"[+-]?\d+(\.\d+)?", c)]
    assert not bad, f"not numbers: {bad} in {cells}"
    return [float(c) for c in cells]


def _checked_report(path: Path) -> dict[str, list[list[str]]]:
    "The tables of a written report, after checking its first line says when, where and with which settings it ran."
    md = path.read_text()
    first = md.splitlines()[0]
    assert re.match(r"Measured on \d{4}-\d\d-\d\d, \d+ cores of an? .+: .+", first), first
    assert "Other processes used" in first, first  # how busy the machine was
    return _tables(md)


def _mtimes() -> dict:
    return {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("*.md")}


def test_extraction_benchmark_writes_its_tables(tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    committed = _mtimes()
    methods = ["tutorial", "bound", "cold", "warm", "openvino-int8"]
    out = _run("extraction.py", "--clips", "2", "--seconds", "1", "--backbone", "mobilenet", "--img-size", "64", "--alpha", "0.25",
               "--max-seq-length", "4", "--calibration", "8", "--methods", ",".join(methods), "--backbones", "",
               "--workdir", str(tmp_path/"work"), "--out", str(tmp_path/"extraction.md"))
    tables = _checked_report(tmp_path/"extraction.md")
    header, *rows = tables["method"]
    assert header == ["method", "frames", "wall s", "frames/s", "x tutorial", "x compute bound", "peak RSS MB", "others' CPU %"]
    assert len(rows) == len(methods), rows  # one row per method
    for row in rows:
        frames, seconds, fps, x_tutorial, x_bound, rss, others = _numbers(row[1:])
        assert frames == 8 and min(fps, x_tutorial, x_bound, rss) > 0 and 0 <= others <= 100, row  # 2 clips x 4 frames each
    assert _numbers(rows[0][1:])[3] == 1.0 and _numbers(rows[1][1:])[4] == 1.0  # the tutorial and the bound are their own references
    predictions = tables["one clip's prediction"][1:]
    assert len(predictions) == 3 and all(len(_numbers(r[1:])) == 5 for r in predictions), predictions  # the tutorial's path, ours, FAST
    assert "| method |" in out and "A warm cache is" in out  # the report is printed too
    assert _mtimes() == committed, "the test overwrote the committed results"


def test_accuracy_benchmark_writes_its_table(tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    committed = _mtimes()
    out = _run("accuracy.py", "--seeds", "1", "--epochs", "1", "--max-frames", "40", "--img-size", "64", "--T", "4",
               "--variants", "tf-fp32,openvino-fp32", "--out", str(tmp_path/"accuracy.md"))
    if out.startswith("skipped"): pytest.skip(out.strip())
    header, *rows = _checked_report(tmp_path/"accuracy.md")["variant"]
    assert header[0] == "variant" and header[3] == "x tf-fp32" and header[-2:] == ["(a) loss", "(b) loss"], header
    assert [r[0] for r in rows] == ["tf-fp32", "openvino-fp32"]  # one row per variant
    reference, openvino = (_numbers(r[2:]) for r in rows)
    assert len(reference) == len(header) - 2 and reference[1] == 1.0 and reference[-2:] == [0.0, 0.0], rows
    assert openvino[2] > 0.99, rows  # fp32 runtimes give TensorFlow's features
    assert "| tf-fp32 |" in out
    assert _mtimes() == committed, "the test overwrote the committed results"


# ---------------------------------------------------------------- the include shortcode

def _readme_builder():
    sys.path.insert(0, str(ROOT/"tools"))
    try: import make_readme
    finally: sys.path.pop(0)
    return make_readme


def _notebook(folder: Path, *markdown: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": md} for md in markdown]
    (folder/"index.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return folder/"index.ipynb"


def test_readme_includes_files_named_by_the_shortcode(tmp_path):
    make_readme = _readme_builder()
    (tmp_path/"results").mkdir()
    (tmp_path/"results"/"speed.md").write_text("Measured today.\n\n| method | frames/s |\n|---|---|\n| ours | 33.3 |\n")
    nb = _notebook(tmp_path/"nbs", "# Title\n\nBefore the table:\n\n{{< include ../results/speed.md >}}\n\nAfter it.")
    readme = make_readme.render(nb, make_readme._Figures(tmp_path))
    assert "Before the table:\n\nMeasured today.\n\n| method | frames/s |\n|---|---|\n| ours | 33.3 |\n\nAfter it." in readme
    assert "include" not in readme
    # a shortcode that is not alone on its line, or is escaped, is text
    nb = _notebook(tmp_path/"nbs", "Write `{{< include ../results/speed.md >}}` on a line of its own.")
    assert "| ours |" not in make_readme.render(nb, make_readme._Figures(tmp_path))


def test_a_missing_include_fails_naming_the_file(tmp_path):
    make_readme = _readme_builder()
    nb = _notebook(tmp_path/"nbs", "{{< include ../results/absent.md >}}")
    with pytest.raises(FileNotFoundError, match=r"index\.ipynb: cannot include \.\./results/absent\.md: .*results/absent\.md does not exist"):
        make_readme.render(nb, make_readme._Figures(tmp_path))


def test_docs_site_includes_files_named_by_the_shortcode(tmp_path):
    from test_docs import _render  # the offline site's renderer on a made-up notebook in tmp_path/nbs
    (tmp_path/"speed.md").write_text("| method | frames/s |\n|---|---|\n| ours | 33.3 |\n")
    html_, *_ = _render([{"cell_type": "markdown", "source": "## Speed\n\n{{< include ../speed.md >}}\n"}], tmp_path)
    assert "<td>ours</td>" in html_ and "include" not in html_.split("<main", 1)[1]
    (tmp_path/"other").mkdir()
    with pytest.raises(FileNotFoundError, match="absent.md"):
        _render([{"cell_type": "markdown", "source": "{{< include ../absent.md >}}"}], tmp_path/"other")


def test_live_benchmark_writes_its_table(tmp_path, ffmpeg):
    "bench/live.py on one tiny configuration: a real stream served by ffmpeg for 12 s, watched by the small MobileNet at 64 px."
    committed = _mtimes()
    out = _run("live.py", "--cnns", "mobilenet", "--paths", "tf", "--sizes", "320x240", "--minutes", "0.2", "--long-minutes", "0.2",
               "--img-size", "64", "--workdir", str(tmp_path/"work"), "--out", str(tmp_path/"live.md"))
    md = (tmp_path/"live.md").read_text()
    header, *rows = _checked_report(tmp_path/"live.md")["CNN"]
    assert header == ["CNN", "runtime", "stream", "minutes", "decisions", "decisions/s", "latency median s", "latency p95 s", "latency max s",
                      "frames read", "frames kept", "frames dropped", "CPU %", "RSS MB", "RSS growth MB", "others' CPU %"], header
    assert len(rows) == 1 and rows[0][:4] == ["mobilenet", "tf", "320x240", "0.2"], rows
    decisions, rate, median, p95, worst, frames, kept, dropped, cpu, rss, growth, others = _numbers(rows[0][4:])
    assert decisions >= 5 and 0 < rate <= 1.5 and 0 < median <= p95 <= worst < 5, rows  # a decision a second, each some ms late
    assert 250 <= frames <= 300 and abs(kept - frames / 5) <= 2 and dropped <= kept, rows  # 12 s at 25 fps, every 5th frame kept
    assert 0 <= cpu <= 100 and rss > 100 and abs(growth) < 200 and 0 <= others <= 100, rows
    assert "- met: mobilenet tf 320x240 latency median" in md and "RSS growth over" in md, md
    assert "| mobilenet | tf | 320x240 |" in out
    assert _mtimes() == committed, "the test overwrote the committed results"
