"""Write README.md from nbs/index.ipynb without Quarto (what `nbdev-readme` does with it).

Hidden cells and cell directives are dropped (`#| hide`, `#| include: false`; `#| echo: false` keeps only the
outputs, `#| output: false` only the code), shown code becomes fenced Python, Markdown, HTML and text outputs
are kept, and links into `nbs/` are rewritten to work from the repository root. Pictures among the outputs
(PNG, JPEG or GIF outputs, and `data:` images inside HTML outputs, such as a GIF shown with
`tensorflow_docs.vis.embed.embed_file`) are written to `index_files/figure-commonmark/`, where nbdev-readme
puts them too, because GitHub does not show `data:` images in a README. A Markdown line that is only Quarto's
include shortcode, `{{< include ../bench/results/extraction.md >}}`, is replaced by that file, its path taken
from the notebook's folder as Quarto does; a missing file stops the build, naming it (`include_files`, which
tools/build_docs.py uses too).
"""
import base64, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = "index_files/figure-commonmark"  # relative to ROOT, as nbdev-readme writes them
_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
_INCLUDE = re.compile(r"^[ \t]*\{\{<\s*include\s+(\S+?)\s*>\}\}[ \t]*$", re.M)
_DATA_IMG = re.compile(r"""(src=["'])data:(image/(?:png|jpeg|gif));base64,([A-Za-z0-9+/=\s]+)(["'])""")

def _directives(src: str) -> tuple[list[str], str]:
    "Split a cell's leading `#| ...` lines from its body."
    lines, dirs = src.splitlines(), []
    while lines and _DIRECTIVE.match(lines[0]): dirs.append(_DIRECTIVE.match(lines.pop(0)).group(1).strip())
    return dirs, "\n".join(lines).strip("\n")

def include_files(md: str, folder: Path, source: str) -> str:
    "`md` with each line `{{< include PATH >}}` replaced by the file at PATH, relative to `folder` (`source` names `md` in errors)."
    def read(m: re.Match) -> str:
        path = (folder/m.group(1)).resolve()
        if not path.is_file(): raise FileNotFoundError(f"{source}: cannot include {m.group(1)}: {path} does not exist")
        return include_files(path.read_text().strip("\n"), path.parent, str(path))
    return _INCLUDE.sub(read, md)

def _has(dirs: list[str], *names: str) -> bool:
    return any(d.replace(" ", "") in names for d in dirs)

def _hidden(dirs: list[str]) -> bool:
    "A cell left out of the docs: `#| hide` or `#| include: false`."
    return _has(dirs, "hide", "include:false")

def _text(v) -> str: return "".join(v) if isinstance(v, list) else v

class _Figures:
    "Writes the README's pictures to `FIGURES` and remembers them, so stale ones can be removed."
    def __init__(self, root: Path): self.root, self.written = root, set()

    def write(self, name: str, mime: str, b64: str) -> str:
        rel = f"{FIGURES}/{name}.{_EXT[mime]}"
        (self.root/rel).parent.mkdir(parents=True, exist_ok=True)
        data = base64.b64decode(re.sub(r"\s", "", b64))
        if not (self.root/rel).exists() or (self.root/rel).read_bytes() != data: (self.root/rel).write_bytes(data)
        self.written.add(rel)
        return rel

    def remove_stale(self):
        folder = self.root/FIGURES
        if not folder.is_dir(): return
        for f in folder.iterdir():
            if f.is_file() and f"{FIGURES}/{f.name}" not in self.written: f.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
            if not any(folder.parent.iterdir()): folder.parent.rmdir()

def _outputs(cell: dict, idx: int, figs: _Figures) -> list[str]:
    "A code cell's outputs as README Markdown; pictures become files under `FIGURES`, linked from the root."
    out = []
    for k, o in enumerate(cell.get("outputs", []), 1):
        data, name = o.get("data", {}), f"cell-{idx}-output-{k}"
        if "text/markdown" in data: out.append(_fix_links(_text(data["text/markdown"])))
        elif "text/html" in data:
            n = iter(range(1, 1000))
            html = _DATA_IMG.sub(lambda m: f"{m.group(1)}{figs.write(f'{name}-{next(n)}', m.group(2), m.group(3))}{m.group(4)}",
                                 _text(data["text/html"]))
            out.append(html.strip())
        elif mime := next((m for m in _EXT if m in data), None): out.append(f"![]({figs.write(name, mime, _text(data[mime]))})")
        elif o.get("output_type") == "stream": out.append("```\n" + _text(o["text"]).rstrip() + "\n```")
        elif "text/plain" in data: out.append("```\n" + _text(data["text/plain"]).rstrip() + "\n```")
    return out

def _fix_links(md: str) -> str:
    "Point relative links and images at `nbs/`, where the notebook's own relative paths start."
    return re.sub(r"(\]\()(?!https?:|#|/|mailto:)([^)]+)\)", lambda m: f"{m.group(1)}nbs/{m.group(2)})", md)

def render(nb_path: Path, figs: "_Figures | None" = None) -> str:
    "Markdown for the README from the index notebook."
    figs = figs or _Figures(ROOT)
    cells, parts = json.loads(nb_path.read_text())["cells"], []
    for i, cell in enumerate(cells):
        src = "".join(cell["source"])
        dirs, body = _directives(src)
        if _hidden(dirs): continue
        if cell["cell_type"] == "markdown": parts.append(_fix_links(include_files(body, nb_path.parent, str(nb_path))))
        elif cell["cell_type"] == "code":
            if body and not _has(dirs, "echo:false"): parts.append(f"```python\n{body}\n```")
            if not _has(dirs, "output:false"): parts.extend(_outputs(cell, i, figs))
    note = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py (make readme): edit the notebook, not this file. -->\n\n"
    return note + "\n\n".join(p for p in parts if p.strip()) + "\n"

if __name__ == "__main__":
    out, figs = ROOT/"README.md", _Figures(ROOT)
    text = render(ROOT/"nbs"/"index.ipynb", figs)
    figs.remove_stale()
    if not out.exists() or out.read_text() != text: out.write_text(text); print(f"wrote {out}")
    else: print(f"{out} is up to date")
