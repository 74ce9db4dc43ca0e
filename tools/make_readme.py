"""Write README.md from nbs/index.ipynb without Quarto (what `nbdev-readme` does with it).

Hidden cells and cell directives are dropped, shown code becomes fenced Python, text and
Markdown outputs are kept, and links into `nbs/` are rewritten to work from the repository root.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")

def _directives(src: str) -> tuple[list[str], str]:
    "Split a cell's leading `#| ...` lines from its body."
    lines, dirs = src.splitlines(), []
    while lines and _DIRECTIVE.match(lines[0]): dirs.append(_DIRECTIVE.match(lines.pop(0)).group(1).strip())
    return dirs, "\n".join(lines).strip("\n")

def _hidden(dirs: list[str]) -> bool:
    "A cell left out of the docs: `#| hide` or `#| include: false`."
    return any(d.replace(" ", "") in ("hide", "include:false") for d in dirs)

def _outputs(cell: dict) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if "text/markdown" in data: out.append("".join(data["text/markdown"]))
        elif o.get("output_type") == "stream": out.append("```\n" + "".join(o["text"]).rstrip() + "\n```")
        elif "text/plain" in data: out.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    return out

def _fix_links(md: str) -> str:
    "Point relative links and images at `nbs/`, where the notebook's own relative paths start."
    return re.sub(r"(\]\()(?!https?:|#|/|mailto:)([^)]+)\)", lambda m: f"{m.group(1)}nbs/{m.group(2)})", md)

def render(nb_path: Path) -> str:
    "Markdown for the README from the index notebook."
    cells, parts = json.loads(nb_path.read_text())["cells"], []
    for cell in cells:
        src = "".join(cell["source"])
        dirs, body = _directives(src)
        if _hidden(dirs): continue
        if cell["cell_type"] == "markdown": parts.append(_fix_links(body))
        elif cell["cell_type"] == "code":
            if body and not any(d.replace(" ", "") == "echo:false" for d in dirs): parts.append(f"```python\n{body}\n```")
            parts.extend(_fix_links(o) for o in _outputs(cell))
    note = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py (make readme): edit the notebook, not this file. -->\n\n"
    return note + "\n\n".join(p for p in parts if p.strip()) + "\n"

if __name__ == "__main__":
    out = ROOT/"README.md"
    text = render(ROOT/"nbs"/"index.ipynb")
    if not out.exists() or out.read_text() != text: out.write_text(text); print(f"wrote {out}")
    else: print(f"{out} is up to date")
