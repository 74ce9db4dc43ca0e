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

def _repo() -> str:
    "owner/name of the GitHub repository, from `[project.urls] Repository` in pyproject.toml."
    m = re.search(r'^Repository\s*=\s*"https://github\.com/([^/"]+/[^/"]+?)/?"', (NBS.parent/"pyproject.toml").read_text(), re.M)
    assert m, "pyproject.toml: no `Repository = \"https://github.com/OWNER/NAME\"` under [project.urls]"
    return m.group(1)

def test_colab_badge_opens_this_notebook_from_the_repository():
    repo = _repo()
    for nb in CHAPTERS:
        badge = _src(_cells(nb)[2])
        want = f"(https://colab.research.google.com/github/{repo}/blob/main/nbs/{nb.name})"
        assert badge.startswith("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]") and badge.rstrip().endswith(want), \
            f"{nb.name}: the third cell must be the Colab badge linking to {want[1:-1]}, right under the title"

def test_colab_install_cell_never_installs_tensorflow():
    repo = _repo()
    for nb in CHAPTERS:
        src = _src(_cells(nb)[3])
        code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("#"))
        assert re.match(r"#\|\s*hide\b", src), f"{nb.name}: the install cell must be hidden (`#| hide`)"
        assert f"git+https://github.com/{repo}" in code, f"{nb.name}: the install cell must install from https://github.com/{repo}"
        assert not re.search(r"tensorflow|\[cpu|-U\b|--upgrade|--force-reinstall", code, re.I), \
            f"{nb.name}: the install cell must not (re)install TensorFlow or upgrade Colab's packages:\n{code}"

def test_tensorflow_is_not_a_hard_dependency():
    "Installing from git on Colab must keep Colab's TensorFlow: TensorFlow comes only with the `cpu` extra."
    text = (NBS.parent/"pyproject.toml").read_text()
    deps = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    names = [re.match(r"[\w.-]+", d).group(0).lower() for d in re.findall(r'"([^"]+)"', deps.group(1))] if deps else []
    assert names and not {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"} & set(names), \
        f"pyproject.toml: TensorFlow must not be in [project] dependencies: {names}"

def _mixed_import_cells(nb: Path) -> list[str]:
    "Cells with a top-level import beside other statements: nbdev's docs processing runs every cell that imports."
    import ast
    bad = []
    for i, cell in enumerate(_cells(nb)):
        src = _src(cell)
        if cell["cell_type"] != "code" or "find_spec(\"video_classifier\")" in src or "nbdev_export()" in src: continue
        code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        try: body = ast.parse(code).body
        except SyntaxError: continue
        imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
        if imports and len(imports) < len(body): bad.append(f"{nb.name} cell {i}: {ast.unparse(imports[0])!r} beside other code")
    return bad

def test_imports_are_in_cells_of_their_own():
    "`nbdev-docs` (and `make docs`) execute every cell holding an import; one that also runs code fails there."
    bad = [b for nb in sorted(NBS.glob("*.ipynb")) for b in _mixed_import_cells(nb)]
    assert not bad, "move these imports to the imports cells (nbdev runs any cell that imports when building the docs):\n" + "\n".join(bad)

def _outputs(nb: Path):
    "Every stored output of a notebook, with its cell index."
    for i, cell in enumerate(_cells(nb)):
        for out in cell.get("outputs", []): yield i, out

def test_stored_outputs_are_clean():
    "Stored outputs are read by people: no widget state, no machine paths, no warnings, no TensorFlow log lines."
    bad = []
    for nb in sorted(NBS.glob("*.ipynb")):
        if "widgets" in json.loads(nb.read_text()).get("metadata", {}): bad.append(f"{nb.name}: widget state in the metadata")
        for i, out in _outputs(nb):
            text = "".join(out.get("text", "")) + "".join("".join(v) if isinstance(v, list) else str(v) for v in out.get("data", {}).values())
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}): bad.append(f"{nb.name} cell {i}: a widget view")
            if re.search(r"/tmp/tmp|/home/|/root/|/work/|pytest-of-", text): bad.append(f"{nb.name} cell {i}: a local path: {text[:120]!r}")
            if re.search(r"\w+Warning:|^[IWE]\d{4} \d\d:\d\d|oneDNN|^\[\w+ @ 0x", text, re.M) or out.get("name") == "stderr":
                bad.append(f"{nb.name} cell {i}: a warning or log line: {text[:120]!r}")
    assert not bad, "run `python tools/run_notebooks.py` on these chapters (it cleans outputs), or fix the cells:\n" + "\n".join(bad)
