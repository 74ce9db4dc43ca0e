"""Build the docs site in `_docs/` from the notebooks, offline and without Quarto (`make docs`).

The notebooks go through nbdev's own processing first, exactly as `nbdev-docs` prepares them for Quarto:
`nbdev.serve.proc_nbs` runs `nbdev.processors.FilterDefaults` over every notebook into `_proc/` (frontmatter
from the title cell, `show_doc` added after every exported definition and executed, hidden and exported
cells dropped, Quarto cell options such as `echo: false` and `output: asis` written into the cells). Those
processed notebooks are then rendered to HTML here, from their stored outputs (nothing is executed but
nbdev's `show_doc` cells): one page per notebook, named as Quarto names it (`output-file`), a sidebar in
nbdev's sidebar order, previous/next links, a table of contents, and local CSS only, so that the site
reads the same with no internet. A Markdown line that is only Quarto's include shortcode,
`{{< include ../bench/results/extraction.md >}}`, becomes the file it names, as in tools/make_readme.py.

Usage: `python tools/build_docs.py [--out DIR] [--workers N] [--force]`.
"""
from __future__ import annotations
import argparse, base64, html, json, os, re, shutil, sys, time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from make_readme import include_files  # Quarto's include shortcode, as the README builder reads it

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent/"docs"
# External images that every chapter shows (the Colab badge): served from the site itself, so pages read offline.
LOCAL_IMAGES = {"https://colab.research.google.com/assets/colab-badge.svg": "site_libs/colab-badge.svg"}
# Outputs are shown in this order of preference, as Jupyter and nbconvert do.
MIME_ORDER = ("text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "image/gif", "text/latex", "text/plain")
_IMG_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
_ANSI = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")


@dataclass
class Page:
    "One notebook of the site: where it came from, where its HTML goes and what it is called."
    src: Path  # the notebook in nbs/
    proc: Path  # nbdev's processed copy in _proc/
    out: str  # output path inside the site, posix, such as `frames.html`
    title: str
    description: str = ""
    nb: dict = field(default_factory=dict, repr=False)

    @property
    def root(self) -> str:
        "Relative prefix from this page back to the site root."
        return "../" * self.out.count("/")


# ---------------------------------------------------------------- nbdev's processing

def process_notebooks(cfg, n_workers: int = 2, force: bool = False) -> Path:
    "Run nbdev's docs processing (what `nbdev-docs` runs before Quarto) into `_proc/`; return that folder."
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.serve import proc_nbs
    os.chdir(cfg.config_path)  # nbdev's processors call `get_config()` from the cwd
    refresh_quarto_yml()  # nbs/nbdev.yml (generated, git-ignored); keeps our nbs/_quarto.yml
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # nbs/sidebar.yml, the order Quarto's sidebar uses
    cache = cfg.config_path/"_proc"
    lib = [p.stat().st_mtime for p in Path(cfg.lib_path).glob("*.py")]
    if cache.exists() and lib and max(lib) > cache.stat().st_mtime: force = True  # show_doc of another module may have changed
    try: cache = proc_nbs(cfg.nbs_path, n_workers=n_workers, force=force)
    except Exception as e:  # nbdev runs every import, export and show_doc cell; `nbdev-docs` stops the same way
        sys.exit(f"build_docs: nbdev's docs processing failed (nbdev-docs would too). It runs every cell that imports "
                 f"(so imports go in cells of their own), every exported cell and every show_doc:\n{e}")
    stale = [p for p in _notebooks(cfg) if not (cache/p.relative_to(cfg.nbs_path)).exists()
             or (cache/p.relative_to(cfg.nbs_path)).stat().st_mtime < p.stat().st_mtime]
    if stale: sys.exit(f"build_docs: nbdev could not process {', '.join(map(str, stale))} (see the error above)")
    return cache


def _sidebar_order(cfg) -> list[str]:
    "Files in the order of nbs/sidebar.yml, which nbdev writes for Quarto (or the user keeps, with `custom_sidebar`)."
    import yaml
    f = cfg.nbs_path/"sidebar.yml"
    if not f.exists(): return []
    def flat(items):
        for it in items or []:
            if isinstance(it, str): yield it
            elif isinstance(it, dict):
                if isinstance(it.get("href"), str): yield it["href"]
                yield from flat(it.get("contents"))
    return list(flat(((yaml.safe_load(f.read_text()) or {}).get("website") or {}).get("sidebar", {}).get("contents")))


def _notebooks(cfg) -> list[Path]:
    "The site's notebooks in the sidebar's order (nbdev's: by folder and name, index first); any it lacks come last."
    from nbdev.doclinks import nbglob
    files = nbglob(cfg.nbs_path, func=Path, file_re=r"\.ipynb$", skip_folder_re=r"(?:^[_.]|^www$)")
    order = {name: i for i, name in enumerate(_sidebar_order(cfg))}
    key = lambda p: (order.get(p.relative_to(cfg.nbs_path).as_posix(), len(order)), p.parent.relative_to(cfg.nbs_path).parts,
                     "00" if p.name.startswith("index.") else p.name)
    return sorted(files, key=key)


def _site_title(cfg) -> str:
    "The site title: `website.title` in nbs/_quarto.yml, else `title` (or the package name) from pyproject.toml."
    import yaml
    q = cfg.nbs_path/"_quarto.yml"
    title = ((yaml.safe_load(q.read_text()) or {}).get("website") or {}).get("title") if q.exists() else None
    return str(title or cfg.get("title") or cfg.lib_name)


def _frontmatter(nb: dict) -> dict:
    "The YAML frontmatter nbdev's `FrontmatterProc` put in a raw cell at the top (title, description, output-file)."
    import yaml
    for cell in nb["cells"][:2]:
        src = "".join(cell["source"]).strip()
        if cell["cell_type"] == "raw" and src.startswith("---"):
            return yaml.safe_load(src.strip("-\n")) or {}
    return {}


def discover_pages(cfg, proc: Path) -> list[Page]:
    "Every processed notebook as a `Page`, in sidebar order, with the file name Quarto would give it."
    pages = []
    for src in _notebooks(cfg):
        rel = src.relative_to(cfg.nbs_path)
        nb = json.loads((proc/rel).read_text(encoding="utf-8"))
        fm = _frontmatter(nb)
        out = (rel.parent/(fm.get("output-file") or rel.with_suffix(".html").name)).as_posix()
        pages.append(Page(src, proc/rel, out, str(fm.get("title") or src.stem), str(fm.get("description") or ""), nb))
    outs = [p.out for p in pages]
    dup = {o for o in outs if outs.count(o) > 1}
    if dup: sys.exit(f"build_docs: several notebooks render to {sorted(dup)}: give them different `default_exp` or `output-file`")
    return pages


# ---------------------------------------------------------------- markdown

def slugify(text: str) -> str:
    "A heading's id as pandoc (and so Quarto) makes it: lower case, spaces to `-`, only letters, digits, `_-.`."
    s = re.sub(r"[^\w\s.-]", "", text.strip().lower())
    s = re.sub(r"\s+", "-", s)
    return re.sub(r"^[^a-z]+", "", s) or "section"


def _highlight(code: str, lang: str = "python") -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound
    try: lexer = get_lexer_by_name(lang or "text")
    except ClassNotFound: lexer = get_lexer_by_name("text")
    body = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="highlight"><code class="language-{html.escape(lang or "text")}">{body}</code></pre>\n'


def _heading_ids(state):
    "markdown-it core rule: give headings pandoc's ids, unique per page, and list them for the table of contents."
    seen, toc = state.env.setdefault("ids", {}), state.env.setdefault("toc", [])
    toks = state.tokens
    for i, tok in enumerate(toks):
        if tok.type != "heading_open": continue
        text = "".join(c.content for c in (toks[i+1].children or []) if c.type in ("text", "code_inline"))
        base = slugify(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        slug = base if n == 0 else f"{base}-{n}"
        tok.attrSet("id", slug)
        toc.append((int(tok.tag[1]), slug, text))


def _markdown():
    from markdown_it import MarkdownIt
    md = MarkdownIt("commonmark", {"html": True, "highlight": lambda code, lang, attrs: _highlight(code, lang)})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("heading_ids", _heading_ids)
    return md


_FENCE = re.compile(r"^\s*(```|~~~)")
_DIV = re.compile(r"^\s*:::+\s*(?:\{([^}]*)\}|([\w-]+))?\s*$")
_ATTR_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")


def _attrs(spec: str) -> str:
    "Pandoc attributes `{.cls #id key=\"v\"}` as HTML attributes."
    classes = re.findall(r"(?:^|\s)\.([\w-]+)", spec)
    ids = re.findall(r"(?:^|\s)#([\w-]+)", spec)
    kv = re.findall(r'([\w-]+)="([^"]*)"', spec)
    out = [f'class="{" ".join(classes)}"'] if classes else []
    out += [f'id="{ids[0]}"'] if ids else []
    out += [f'{k}="{html.escape(v)}"' for k, v in kv]
    return (" " + " ".join(out)) if out else ""


def pandoc_to_commonmark(md: str) -> str:
    "The bits of pandoc markdown that nbdev writes, as CommonMark + HTML: fenced divs and `[link](url){attrs}`."
    out, fence = [], None
    for line in md.splitlines():
        m = _FENCE.match(line)
        if m and (fence is None or m.group(1) == fence): fence = None if fence else m.group(1)
        if fence is None and not m:
            d = _DIV.match(line)
            if d:  # an opening (with attributes or a class name) or a closing `:::`
                spec = d.group(1) or (("." + d.group(2)) if d.group(2) else None)
                out += ["", f"<div{_attrs(spec)}>" if spec else "</div>", ""]
                continue
            line = _ATTR_LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}"{_attrs(m.group(3))}>{m.group(1)}</a>', line)
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------- cells

def _options(src: str) -> tuple[dict, str]:
    "Quarto cell options left by nbdev (`#| echo: false`) and the code without them."
    lines, opts = src.splitlines(), {}
    while lines and (m := re.match(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$", lines[0])):
        opts[m.group(1)] = m.group(2).strip("'\"").lower() if m.group(2).lower() in ("true", "false") else m.group(2).strip("'\"")
        lines.pop(0)
    return opts, "\n".join(lines).strip("\n")


def _terminal(text: str) -> str:
    "What a terminal would show for `text`: `\\r` returns to the line start, `\\b` steps back, ANSI codes vanish."
    lines = []
    for raw in _ANSI.sub("", text).split("\n"):
        buf, pos = [], 0
        for ch in raw:
            if ch == "\r": pos = 0
            elif ch == "\b": pos = max(0, pos - 1)
            else:
                if pos < len(buf): buf[pos] = ch
                else: buf.append(ch)
                pos += 1
        lines.append("".join(buf).rstrip())
    return "\n".join(lines)


def _merged(outputs: list[dict]) -> list[dict]:
    "Outputs with consecutive stream chunks of the same stream joined (progress bars arrive in pieces)."
    res = []
    for o in outputs:
        if o.get("output_type") == "stream" and res and res[-1].get("output_type") == "stream" and res[-1].get("name") == o.get("name"):
            res[-1] = {**res[-1], "text": res[-1]["text"] + "".join(o.get("text", ""))}
        elif o.get("output_type") == "stream": res.append({**o, "text": "".join(o.get("text", ""))})
        else: res.append(o)
    return res


class Renderer:
    "Renders the processed notebooks of a site into HTML pages written under `out`."

    def __init__(self, cfg, pages: list[Page], out: Path):
        self.cfg, self.pages, self.out, self.md = cfg, pages, out, _markdown()
        self.site_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip("/") + "/" if cfg.get("doc_host") else None
        self.by_src = {p.src.relative_to(cfg.nbs_path).as_posix(): p for p in pages}
        self.resources: set[tuple[Path, str]] = set()  # (file to copy, its path in the site)

    # -- text
    def markdown(self, text: str, env: dict) -> str:
        return self.md.render(pandoc_to_commonmark(text), env)

    def fix_urls(self, body: str, page: Page) -> str:
        "Links as Quarto resolves them: notebooks to their pages, the hosted site to relative, known images local."
        def fix(m):
            attr, url = m.group(1), html.unescape(m.group(2))
            if url in LOCAL_IMAGES: return f'{attr}="{page.root}{LOCAL_IMAGES[url]}"'
            if self.site_url and url.startswith(self.site_url): url = page.root + url[len(self.site_url):]
            u = urlsplit(url)
            if u.scheme or u.netloc or url.startswith(("#", "/", "data:", "mailto:")) or not u.path:
                return f'{attr}="{html.escape(url)}"'
            target = (Path(page.out).parent/u.path).as_posix()
            target = os.path.normpath(target).replace(os.sep, "/")
            frag = f"#{u.fragment}" if u.fragment else ""
            if u.path.endswith((".ipynb", ".qmd", ".md")):
                linked = self.by_src.get(str(Path(target).with_suffix(".ipynb").as_posix()))
                new = os.path.relpath(linked.out, Path(page.out).parent.as_posix()) if linked else str(Path(u.path).with_suffix(".html"))
                return f'{attr}="{html.escape(new + frag)}"'
            src = self.cfg.nbs_path/unquote(target)
            target = unquote(target)
            if src.is_file() and not (self.out/target).exists(): self.resources.add((src, target))
            return f'{attr}="{html.escape(url)}"'
        return re.sub(r'\b(href|src)="([^"]*)"', fix, body)

    # -- outputs
    def image(self, page: Page, data: str, mime: str, name: str, meta: dict) -> str:
        "Write an image output next to the page (as Quarto does, in `<page>_files/figure-html/`) and link it."
        rel = f"{Path(page.out).stem}_files/figure-html/{name}.{_IMG_EXT[mime]}"
        dest = self.out/Path(page.out).parent/rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode("".join(data) if isinstance(data, list) else data))
        size = "".join(f' {k}="{meta[k]}"' for k in ("width", "height") if isinstance(meta.get(k), (int, float)))
        return f'<img src="{rel}" alt=""{size}>'

    def output(self, page: Page, o: dict, name: str, opts: dict, env: dict) -> str:
        kind = o.get("output_type")
        if kind == "stream":
            text = _terminal(o["text"]).strip("\n")
            return f'<pre class="output stream {o.get("name", "stdout")}">{html.escape(text)}</pre>\n' if text else ""
        if kind == "error":
            return f'<pre class="output error">{html.escape(_terminal(chr(10).join(o.get("traceback", []))))}</pre>\n'
        data = o.get("data", {})
        mime = next((m for m in MIME_ORDER if m in data), None)
        if mime is None: return ""
        val = "".join(data[mime]) if isinstance(data[mime], list) else data[mime]
        if mime == "text/markdown":
            md = self.markdown(val, env)
            return md if opts.get("output") == "asis" else f'<div class="output markdown">{md}</div>\n'
        if mime == "text/html": return f'<div class="output html">{val}</div>\n'
        if mime == "image/svg+xml": return f'<div class="output figure">{val}</div>\n'
        if mime in _IMG_EXT:
            return f'<div class="output figure" id="{name}">{self.image(page, data[mime], mime, name, o.get("metadata", {}).get(mime, {}))}</div>\n'
        return f'<pre class="output {mime.split("/")[1]}">{html.escape(val.rstrip())}</pre>\n'

    # -- cells and pages
    def cell(self, page: Page, i: int, cell: dict, env: dict) -> str:
        src = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            src = include_files(src, page.src.parent, str(page.src))
            for name, data in (cell.get("attachments") or {}).items():
                mime = next((m for m in data if m in _IMG_EXT), None)
                if mime:
                    path = f"{Path(page.out).stem}_files/attachments/{name}"
                    (self.out/Path(page.out).parent/path).parent.mkdir(parents=True, exist_ok=True)
                    (self.out/Path(page.out).parent/path).write_bytes(base64.b64decode(data[mime]))
                    src = src.replace(f"attachment:{name}", path)
            return self.markdown(src, env)
        if cell["cell_type"] == "raw": return ""
        opts, code = _options(src)
        if opts.get("include") == "false": return ""
        parts = []
        if code and opts.get("echo") != "false":
            hl = _highlight(code, cell.get("metadata", {}).get("language", "python"))
            if opts.get("code-fold") in ("show", "true"):
                summary = html.escape(opts.get("code-summary", "Code"))
                hl = f'<details class="code-fold"{" open" if opts["code-fold"] == "show" else ""}><summary>{summary}</summary>{hl}</details>'
            parts.append(f'<div class="cell-code">{hl}</div>')
        if opts.get("output") != "false":
            outs = [self.output(page, o, f"cell-{i}-output-{k}", opts, env) for k, o in enumerate(_merged(cell.get("outputs", [])), 1)]
            outs = [o for o in outs if o]
            if outs:
                cap = f'<p class="caption">{html.escape(opts["fig-cap"])}</p>' if "fig-cap" in opts else ""
                cls = "cell-output asis" if opts.get("output") == "asis" else "cell-output"
                parts.append(f'<div class="{cls}">{"".join(outs)}{cap}</div>')
        return f'<div class="cell">{"".join(parts)}</div>\n' if parts else ""

    def render(self, page: Page) -> str:
        env: dict = {}
        body = "".join(self.cell(page, i, c, env) for i, c in enumerate(page.nb["cells"]))
        return self.fix_urls(self.layout(page, body, env.get("toc", [])), page)

    def layout(self, page: Page, body: str, toc: list) -> str:
        i = self.pages.index(page)
        r, e = page.root, html.escape
        site = e(_site_title(self.cfg))
        active = ' class="active" aria-current="page"'
        side = "".join(f'<li><a href="{r}{p.out}"{active if p is page else ""}>{e(p.title)}</a></li>' for p in self.pages)
        prev = self.pages[i-1] if i > 0 else None
        nxt = self.pages[i+1] if i + 1 < len(self.pages) else None
        pn = (f'<a class="prev" rel="prev" href="{r}{prev.out}"><span>Previous</span>{e(prev.title)}</a>' if prev else "<span></span>") + \
             (f'<a class="next" rel="next" href="{r}{nxt.out}"><span>Next</span>{e(nxt.title)}</a>' if nxt else "<span></span>")
        toc_items = "".join(f'<li class="toc-h{lvl}"><a href="#{slug}">{e(text)}</a></li>' for lvl, slug, text in toc if lvl in (2, 3))
        toc_html = f'<nav class="toc" aria-label="On this page"><h2>On this page</h2><ul>{toc_items}</ul></nav>' if toc_items else ""
        repo = self.cfg.get("git_url")
        repo_link = f'<a class="repo" href="{e(repo)}">Source on GitHub</a>' if repo else ""
        desc = f'<p class="description">{self.md.renderInline(page.description)}</p>' if page.description else ""
        page_title = site if page.title == site else f"{e(page.title)} – {site}"
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tools/build_docs.py (nbdev processing, offline renderer)">
<title>{page_title}</title>
<meta name="description" content="{e(page.description.replace("`", ""))}">
<link rel="stylesheet" href="{r}site_libs/style.css">
<link rel="stylesheet" href="{r}site_libs/pygments.css">
</head>
<body>
<header class="navbar"><a class="brand" href="{r}index.html">{site}</a>{repo_link}</header>
<div class="layout">
<nav class="sidebar" aria-label="Chapters"><ul>{side}</ul></nav>
<main id="content">
<header class="page-header"><h1 class="title">{self.md.renderInline(page.title)}</h1>{desc}</header>
{body}
<nav class="page-nav" aria-label="Previous and next">{pn}</nav>
</main>
{toc_html}
</div>
</body>
</html>
"""


def _unlink_missing_anchors(out: Path, pages: list[Page]) -> list[str]:
    "Unwrap links to an anchor their page lacks (nbdev links private names, which have no `show_doc`); return them."
    texts = {p.out: (out/p.out).read_text(encoding="utf-8") for p in pages}
    ids = {o: set(re.findall(r'\bid="([^"]+)"', t)) for o, t in texts.items()}
    dead = []
    for p in pages:
        here = Path(p.out).parent
        def fix(m):
            href = html.unescape(m.group(1))
            if "#" not in href or urlsplit(href).scheme: return m.group(0)
            path, frag = href.split("#", 1)
            target = os.path.normpath((here/path).as_posix()) if path else p.out
            if target not in ids or frag in ids[target]: return m.group(0)
            dead.append(f"{target}#{frag}")
            return m.group(2)
        new = re.sub(r'<a href="([^"]*)">(.*?)</a>', fix, texts[p.out], flags=re.S)
        if new != texts[p.out]: (out/p.out).write_text(new, encoding="utf-8")
    return dead


def _write_assets(out: Path):
    from pygments.formatters import HtmlFormatter
    libs = out/"site_libs"
    libs.mkdir(parents=True, exist_ok=True)
    for f in ASSETS.iterdir():
        if f.is_file(): shutil.copy2(f, libs/f.name)
    (libs/"pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"))
    (out/".nojekyll").touch()  # GitHub Pages: serve `_files` folders as they are


def build(out: Path | None = None, n_workers: int = 2, force: bool = False) -> Path:
    "Process the notebooks with nbdev and write the site to `out` (default: the configured `doc_path`)."
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    out = Path(out or cfg.doc_path).absolute()
    t0 = time.perf_counter()
    proc = process_notebooks(cfg, n_workers=n_workers, force=force)
    t1 = time.perf_counter()
    pages = discover_pages(cfg, proc)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_assets(tmp)
    r = Renderer(cfg, pages, tmp)
    for p in pages:
        dest = tmp/p.out
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(r.render(p), encoding="utf-8")
    dead = _unlink_missing_anchors(tmp, pages)
    if dead: print(f"build_docs: {len(dead)} links to names with no entry on their page left as plain text: {', '.join(sorted(set(dead))[:6])}")
    for src, rel in sorted(r.resources):
        (tmp/rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, tmp/rel)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"build_docs: {len(pages)} pages in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"(nbdev processing {t1 - t0:.1f}s, rendering {time.perf_counter() - t1:.1f}s): " + ", ".join(p.out for p in pages))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="site folder (default: doc_path from pyproject.toml, `_docs`)")
    ap.add_argument("--workers", type=int, default=2, help="processes for nbdev's notebook processing")
    ap.add_argument("--force", action="store_true", help="reprocess every notebook, ignoring _proc/'s cache")
    a = ap.parse_args()
    build(a.out, a.workers, a.force)
