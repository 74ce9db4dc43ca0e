"""Build the docs site into `_docs/` (`make docs`): the site CI loads in Chromium and the deploy workflow publishes.

nbdev prepares the notebooks as for any nbdev site (`nbdev.serve.proc_nbs` into `_proc/`: frontmatter from the
title cell, a `show_doc` card after every exported definition, hidden and exported cells dropped, names linked to
their cards). nbconvert renders each one (`HTMLExporter`: JupyterLab's template and CSS, mistune for Markdown,
Pygments for code, streams coalesced, image outputs written to `<page>_files/`) through tools/docs/page.html.j2,
which puts the site around it: navbar, chapter sidebar, table of contents, previous/next.

Ours is what nbconvert cannot know, because nbdev writes for Quarto. `QuartoCells`: the cell options nbdev leaves
(`#| echo: false`, `output: false`, `include: false`, `code-fold`), the include shortcode
(`{{< include ../bench/results/x.md >}}`, read as tools/make_readme.py reads it), pandoc's `[text](url){attrs}` and
`::: {.callout-note}` divs. `Site.finish`: heading ids as pandoc makes them (the anchors nbdev links to), notebooks
linked as their pages, the hosted site linked relatively, the Colab badge and pictures served from the site. Then
links to names that have no card (private ones) are unwrapped. Nothing needs the internet, to build or to read.

Usage: `python tools/build_docs.py [--out DIR] [--force]`.
"""
from __future__ import annotations
import argparse, re, shutil, sys, time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets.config import Config

from make_readme import include_files  # Quarto's include shortcode, as the README builder reads it

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent/"docs"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"  # served from site_libs/ instead
_OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")  # a Quarto cell option, as nbdev leaves it
_ATTR_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")
_DIV = re.compile(r"^:::+[ \t]*(?:\{([^}\n]*)\}|([\w-]+))?[ \t]*$", re.M)
_CODE = re.compile(r"(^```.*?^```)", re.M | re.S)
_CELL_KEYS = {"id", "cell_type", "metadata", "source", "outputs", "execution_count", "attachments"}  # nbformat 4.5


@dataclass
class Page:
    "A notebook of the site and the page it becomes."
    nb: Path  # the notebook as nbdev processed it, in _proc/
    out: str  # its page, such as `frames.html`
    title: str
    description: str = ""


def _attrs(spec: str) -> str:
    "Pandoc attributes `{.a .b #id key=\"v\"}` as HTML attributes."
    kv = re.findall(r'[\w-]+="[^"]*"', spec)
    rest = re.sub(r'[\w-]+="[^"]*"', "", spec)
    classes, ids = re.findall(r"\.([\w-]+)", rest), re.findall(r"#([\w-]+)", rest)
    return " ".join(([f'class="{" ".join(classes)}"'] if classes else []) + [f'id="{i}"' for i in ids[:1]] + kv)


def pandoc_to_html(md: str) -> str:
    "Pandoc's `[text](url){attrs}` and `::: {.callout-note}` divs (outside code blocks) as HTML, which mistune keeps."
    def div(m): return f"\n<div {_attrs(m[1] or '.' + m[2])}>\n" if m[1] or m[2] else "\n</div>\n"
    def part(s): return _DIV.sub(div, _ATTR_LINK.sub(lambda m: f'<a href="{m[2]}" {_attrs(m[3])}>{m[1]}</a>', s))
    return "".join(s if s.startswith("```") else part(s) for s in _CODE.split(md))


def slugify(text: str) -> str:
    "A heading's id as pandoc (so Quarto, and nbdev's links) makes it: lower case, `-` for spaces, `\\w_-.` only."
    s = re.sub(r"\s+", "-", re.sub(r"[^\w\s.-]", "", text.strip().lower()))
    return re.sub(r"^[^a-z]+", "", s) or "section"


class QuartoCells(Preprocessor):
    "What nbdev leaves for Quarto, done for nbconvert: cell options, includes, pandoc attributes and divs."
    def preprocess(self, nb, resources):
        folder = Path(resources["metadata"]["path"])
        name = str(folder/resources["metadata"]["name"])  # the notebook, for errors
        nb.cells = [c for c in (self.cell(c, folder, name) for c in nb.cells) if c]
        return nb, resources

    def cell(self, cell, folder: Path, name: str):
        if cell.cell_type == "raw": return None  # nbdev's frontmatter, which the page header shows
        if cell.cell_type == "markdown":
            cell.source = pandoc_to_html(include_files(cell.source, folder, name))
            return cell
        lines, opts = cell.source.splitlines(), {}
        while lines and (m := _OPTION.match(lines[0])):
            opts[m[1]] = m[2].strip("\"'")
            lines.pop(0)
        cell.source = "\n".join(lines).strip("\n")
        if opts.get("include") == "false": return None
        if opts.get("echo") == "false": cell.metadata["transient"] = {"remove_source": True}
        if opts.get("output") == "false": cell.outputs = []
        if opts.get("output") == "asis": cell.metadata["tags"] = [*cell.metadata.get("tags", []), "asis"]  # show_doc
        if "code-fold" in opts: cell.metadata["code_fold"] = {"open": opts["code-fold"] == "show",
                                                              "summary": opts.get("code-summary", "Code")}
        for o in cell.get("outputs", []):
            if "text/markdown" in o.get("data", {}): o.data["text/markdown"] = pandoc_to_html(o.data["text/markdown"])
        return cell


def exporter() -> HTMLExporter:
    "nbconvert's HTML exporter: JupyterLab's template under ours, no prompts, streams coalesced, images as files."
    figures = "{unique_key}_files/cell-{cell_index}-output-{index}{extension}"  # as Quarto names them
    c = Config({"CoalesceStreamsPreprocessor": {"enabled": True},
                "ExtractOutputPreprocessor": {"output_filename_template": figures}})
    return HTMLExporter(config=c, template_name="lab", template_file="page.html.j2", extra_template_paths=[str(ASSETS)],
                        exclude_input_prompt=True, exclude_output_prompt=True,
                        preprocessors=[QuartoCells, "nbconvert.preprocessors.ExtractOutputPreprocessor"])


@dataclass
class Site:
    "The pages of a site and how its links resolve."
    title: str
    folder: Path  # the notebooks' folder, where relative links and pictures start
    pages: list[Page]
    url: str = ""  # where the site is hosted: links into it become relative
    repo: str = ""
    files: set[str] = field(default_factory=set)  # pictures and other files the pages link to, to copy

    def link(self, url: str) -> str:
        "Where `url` leads in the built site; remembers local files to copy."
        if url == COLAB_BADGE: return "site_libs/colab-badge.svg"
        if self.url and url.startswith(self.url): url = url[len(self.url):] or "index.html"
        u = urlsplit(url)
        if u.scheme or u.netloc or not u.path or url.startswith("/"): return url
        if u.path.endswith(".ipynb"):
            out = next((p.out for p in self.pages if p.nb.name == Path(u.path).name), Path(u.path).stem + ".html")
            return out + (f"#{u.fragment}" if u.fragment else "")
        if (self.folder/unquote(u.path)).is_file(): self.files.add(unquote(u.path))
        return url

    def finish(self, html: str) -> BeautifulSoup:
        "A page from nbconvert with pandoc's heading ids, its table of contents and the site's links."
        soup, seen = BeautifulSoup(html, "html.parser"), {}
        toc = soup.find(id="toc")
        for h in soup.find(class_="jp-Notebook").find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
            anchor = h.find("a", class_="anchor-link")
            text = "".join(s for s in h.strings if s.parent is not anchor).strip()
            base = slugify(text)
            seen[base] = seen.get(base, -1) + 1
            slug = f"{base}-{seen[base]}" if seen[base] else base  # pandoc numbers repeats -1, -2...
            h["id"] = slug
            if anchor: anchor["href"] = f"#{slug}"
            if h.name in ("h2", "h3"):
                entry = f'<li class="toc-{h.name}"><a href="#{slug}">{escape(text)}</a></li>'
                toc.append(BeautifulSoup(entry, "html.parser"))
        if not toc.find("li"): toc.parent.decompose()
        for tag, attr in (("a", "href"), ("img", "src")):
            for el in soup.find_all(tag, attrs={attr: True}): el[attr] = self.link(el[attr])
        return soup


def unlink_missing_anchors(soups: dict[str, BeautifulSoup]) -> list[str]:
    "Unwrap links to an anchor their page lacks (nbdev links private names, which have no card); return them."
    ids = {out: {t["id"] for t in s.find_all(id=True)} for out, s in soups.items()}
    dead = []
    for out, soup in soups.items():
        for a in soup.find_all("a", href=lambda h: h and "#" in h):
            path, frag = a["href"].split("#", 1)
            if (path or out) in ids and frag not in ids[path or out]:
                dead.append(f"{path or out}#{frag}")
                a.unwrap()
    return dead


def process_notebooks(cfg, force: bool = False) -> Path:
    "nbdev's processing for docs into `_proc/` (what `nbdev-docs` does before rendering); return that folder."
    from nbdev.serve import proc_nbs
    cache = cfg.config_path/"_proc"
    lib = max((p.stat().st_mtime for p in Path(cfg.lib_path).glob("*.py")), default=0)
    force = force or (cache.exists() and lib > cache.stat().st_mtime)  # the show_doc of another module may have changed
    try: proc_nbs(cfg.nbs_path, n_workers=2, force=force)
    except Exception as e:  # nbdev runs every import, export and show_doc cell
        sys.exit(f"build_docs: nbdev's docs processing failed. It runs every cell that imports (so imports go in cells "
                 f"of their own), every exported cell and every show_doc:\n{e}")
    stale = [nb for nb in cfg.nbs_path.glob("[!_.]*.ipynb")
             if not (cache/nb.name).exists() or (cache/nb.name).stat().st_mtime < nb.stat().st_mtime]
    if stale: sys.exit(f"build_docs: nbdev could not process {', '.join(map(str, stale))} (see the error above)")
    return cache


def discover(proc: Path) -> list[Page]:
    "Every processed notebook as a page, home first, then by file name, named from nbdev's frontmatter."
    from fastcore.nbio import nb_frontmatter, read_nb
    pages = []
    for nb in sorted(proc.glob("[!_.]*.ipynb"), key=lambda p: (p.name != "index.ipynb", p.name)):
        fm = nb_frontmatter(read_nb(nb))
        pages.append(Page(nb, fm.get("output-file") or nb.stem + ".html", str(fm.get("title", nb.stem)),
                          str(fm.get("description", ""))))
    outs = [p.out for p in pages]
    if dup := sorted({o for o in outs if outs.count(o) > 1}):
        sys.exit(f"build_docs: several notebooks make the page {dup}: give them different `default_exp`")
    return pages


def render(site: Site, ex: HTMLExporter, page: Page, out: Path) -> BeautifulSoup:
    "One page from its processed notebook; its image outputs are written under `out`."
    nb = nbformat.read(page.nb, as_version=4)
    for c in nb.cells:  # nbdev's own marks on the cells it ran (`has_sd`, timings), which nbformat's schema refuses
        for k in set(c) - _CELL_KEYS: del c[k]
        c.metadata.pop("execution", None)
    nb.metadata["title"] = page.title if page.title == site.title else f"{page.title} – {site.title}"
    res = {"metadata": {"name": page.nb.name, "path": str(site.folder)}, "unique_key": Path(page.out).stem,
           "site": site, "page": page}
    html, res = ex.from_notebook_node(nb, resources=res)
    for name, data in res["outputs"].items():
        (out/name).parent.mkdir(parents=True, exist_ok=True)
        (out/name).write_bytes(data)
    return site.finish(html)


def build(out: Path | None = None, force: bool = False) -> Path:
    "Process the notebooks with nbdev, render them with nbconvert and write the site to `out` (default `_docs`)."
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    out, t0 = Path(out or cfg.doc_path).absolute(), time.perf_counter()
    proc = process_notebooks(cfg, force)
    t1 = time.perf_counter()
    hosted = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip("/") + "/"
    site, ex = Site(cfg.title, cfg.nbs_path, discover(proc), hosted, cfg.git_url), exporter()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ASSETS, tmp/"site_libs", ignore=shutil.ignore_patterns("*.j2"))  # our CSS, the Colab badge
    lab = [ex.environment.loader.get_source(ex.environment, f"static/{f}")[0] for f in ("index.css", "theme-light.css")]
    (tmp/"site_libs"/"jupyterlab.css").write_text("\n".join(lab))  # the CSS nbconvert's lab template inlines
    try: soups = {p.out: render(site, ex, p, tmp) for p in site.pages}
    except FileNotFoundError as e: sys.exit(f"build_docs: {e}")  # a Markdown cell includes a file that is not there
    dead = sorted(set(unlink_missing_anchors(soups)))
    if dead: print(f"build_docs: {len(dead)} links to names with no card left as text: {', '.join(dead[:6])}...")
    for name, soup in soups.items(): (tmp/name).write_text(str(soup), encoding="utf-8")
    for f in site.files:
        (tmp/f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(site.folder/f, tmp/f)
    (tmp/".nojekyll").touch()  # GitHub Pages: serve `_files` folders as they are
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    t2 = time.perf_counter()
    print(f"build_docs: {len(soups)} pages in {out.name}/ (nbdev {t1 - t0:.1f}s, nbconvert and links {t2 - t1:.1f}s)")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="site folder (default: doc_path from pyproject.toml, `_docs`)")
    ap.add_argument("--force", action="store_true", help="reprocess every notebook, ignoring _proc/'s cache")
    a = ap.parse_args()
    build(a.out, a.force)
