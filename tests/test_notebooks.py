"""Checks on the chapters themselves: order, Colab readiness, and the nbdev layout."""
import json, re
from pathlib import Path

NBS = Path(__file__).resolve().parents[1]/"nbs"
CHAPTERS = sorted(NBS.glob("[0-9][0-9]_*.ipynb"))

def _cells(nb: Path) -> list[dict]: return json.loads(nb.read_text())["cells"]
def _src(cell: dict) -> str: return "".join(cell["source"])

def test_chapters_are_numbered_in_order():
    nums = [int(p.name[:2]) for p in CHAPTERS]
    assert nums == list(range(len(nums))), f"chapters must be numbered 00, 01, ... without gaps: {[p.name for p in CHAPTERS]}"
    assert len(CHAPTERS) >= 2

def test_each_chapter_opens_with_export_target_and_title():
    for nb in CHAPTERS:
        cells = _cells(nb)
        assert re.match(r"#\|\s*default_exp \w+", _src(cells[0])), f"{nb.name}: first cell must be `#| default_exp MODULE`"
        title = _src(cells[1])
        assert title.startswith("# ") and "\n> " in title, f"{nb.name}: second cell must be an H1 title with a `>` summary"

def test_each_chapter_has_colab_badge_and_install_cell():
    for nb in CHAPTERS:
        srcs = [_src(c) for c in _cells(nb)[:4]]
        assert any(f"colab.research.google.com/github/" in s and f"nbs/{nb.name}" in s for s in srcs), f"{nb.name}: no Colab badge pointing at itself"
        assert any("find_spec(\"video_classifier\") is None" in s and "pip" in s for s in srcs), f"{nb.name}: no install cell that installs only when the package is missing"

def test_import_cells_hold_only_imports():
    for nb in CHAPTERS:
        for cell in _cells(nb):
            src = _src(cell)
            if cell["cell_type"] != "code" or not re.match(r"#\|\s*export\s*\n", src): continue
            body = [l for l in src.splitlines()[1:] if l.strip() and not l.startswith("#")]
            if body and all(re.match(r"(from|import) ", l) for l in body[:1]) and any(re.match(r"(from|import) ", l) for l in body):
                mixed = [l for l in body if not re.match(r"(from \S+ )?import |\s|\)", l)]
                assert not mixed, f"{nb.name}: an import cell also runs code: {mixed[:2]}"
