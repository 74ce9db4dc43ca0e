"""The docs site that `make docs` builds into `_docs/` (and the deploy workflow publishes), served on 127.0.0.1 and
loaded in headless Chromium.

Checks: a home page and one page per chapter, in chapter order, with navigation on every page; every chapter's Colab
badge; every image output of a chapter on its page; every internal link and image resolves; nothing is loaded from
the internet; every exported function and class has its `show_doc` card (signature and docstring); every page
renders in the browser with all its images and no error, and screenshots of the home page and a chapter with
figures go to `artifacts/screenshots/`. Then the builder's own part, on a made-up notebook.
"""
import ast, functools, json, re, subprocess, sys, threading, warnings
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import urlopen

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
DOCS, NBS, LIB, PROC = ROOT/"_docs", ROOT/"nbs", ROOT/"video_classifier", ROOT/"_proc"
SHOTS = ROOT/"artifacts"/"screenshots"
NOTEBOOKS = sorted(NBS.glob("*.ipynb"))
CHAPTERS = sorted(NBS.glob("[0-9][0-9]_*.ipynb"))
# Every request the browser makes to a host other than the test server fails: the pages must read offline.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-sync", "--disable-component-update", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


# ---------------------------------------------------------------- the site and its server

def _build_if_stale():
    "Build the site when it is missing or older than a notebook (`make docs` has normally just built it)."
    index = DOCS/"index.html"
    sources = [*NOTEBOOKS, ROOT/"tools"/"build_docs.py", *(ROOT/"tools"/"docs").iterdir()]
    newest = max(p.stat().st_mtime for p in sources)
    if not index.exists() or index.stat().st_mtime < newest:
        subprocess.run([sys.executable, str(ROOT/"tools"/"build_docs.py")], cwd=ROOT, check=True)


class _Page:
    "What the tests read from one page: ids, links, resources, sidebar, prev/next, headings, code blocks and text."
    def __init__(self, text: str):
        s = BeautifulSoup(text, "html.parser")
        self.ids = {t["id"] for t in s.find_all(id=True)}
        self.links = [a["href"] for a in s.find_all("a", href=True)]
        self.resources = [(t.name, t["src"]) for t in s.select("[src]")]
        self.resources += [("link", t["href"]) for t in s.select("link")]
        self.sidebar = [(a["href"], a.get_text(strip=True)) for a in s.select("nav.sidebar a")]
        self.prevnext = {a["rel"][0]: a["href"] for a in s.select("a[rel]")}
        self.headings = [(h.name, h.get("id"), h.get_text().strip().removesuffix("¶").strip())  # nbconvert's anchor
                         for h in s.select("h1, h2, h3, h4, h5, h6")]
        self.pres = [t.get_text() for t in s.find_all("pre")]
        self.styles = [t.get_text() for t in s.find_all("style")]
        self.text = re.sub(r"\s+", " ", s.get_text())


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def site():
    "The built site served on 127.0.0.1 (a free port), with every page parsed: (base URL, {path: _Page})."
    _build_if_stale()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(DOCS)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pages = {p.relative_to(DOCS).as_posix(): _Page(p.read_text(encoding="utf-8")) for p in sorted(DOCS.glob("*.html"))}
    try: yield f"http://127.0.0.1:{server.server_address[1]}/", pages
    finally:
        server.shutdown()
        server.server_close()


def _nb_title(nb: Path) -> str:
    "The H1 title of a notebook: the first markdown cell starting with `# `."
    for c in json.loads(nb.read_text())["cells"]:
        src = "".join(c["source"]).lstrip()
        if c["cell_type"] == "markdown" and src.startswith("# "): return src.splitlines()[0][2:].strip()
    return nb.stem


def _order(pages: dict) -> list[str]:
    "The page paths in the order of the home page's sidebar."
    return [h for h, _ in pages["index.html"].sidebar]


# ---------------------------------------------------------------- structure

def test_home_and_one_page_per_chapter_in_order(site):
    _, pages = site
    assert "index.html" in pages, "no home page (index.html) in _docs/"
    titles = [t for _, t in pages["index.html"].sidebar]
    want = [_nb_title(NBS/"index.ipynb")] + [_nb_title(nb) for nb in CHAPTERS]
    assert titles[:len(want)] == want, f"sidebar {titles} is not the home page then the chapters in order {want}"
    order = _order(pages)
    assert len(order) == len(NOTEBOOKS), f"sidebar has {len(order)} pages for {len(NOTEBOOKS)} notebooks"
    assert order[0] == "index.html"
    assert set(order) <= set(pages), f"sidebar links to pages that were not built: {set(order) - set(pages)}"


def test_every_page_has_sidebar_and_prev_next(site):
    _, pages = site
    order = _order(pages)
    for i, path in enumerate(order):
        p = pages[path]
        assert [h for h, _ in p.sidebar] == order, f"{path}: its sidebar differs from the home page's"
        want = {"prev": order[i-1]} if i else {}
        if i + 1 < len(order): want["next"] = order[i+1]
        assert p.prevnext == want, f"{path}: previous/next links {p.prevnext}, expected {want}"
        assert len(p.text) > 200, f"{path}: almost no text"


def _page_of(nb: Path) -> str:
    "The page nbdev names a notebook's (`output-file` in the frontmatter of its processed copy)."
    from fastcore.nbio import nb_frontmatter, read_nb
    return nb_frontmatter(read_nb(PROC/nb.name)).get("output-file") or nb.stem + ".html"


def test_every_chapter_has_its_colab_badge(site):
    _, pages = site
    for nb in CHAPTERS:
        text = (DOCS/_page_of(nb)).read_text(encoding="utf-8")
        colab = rf'https://colab\.research\.google\.com/github/[^"]+/nbs/{re.escape(nb.name)}'
        badge = rf'<a href="{colab}">\s*<img [^>]*src="site_libs/colab-badge\.svg"'
        assert re.search(badge, text), f"{_page_of(nb)}: no Colab badge opening nbs/{nb.name} (served from the site)"


def test_every_image_output_is_on_its_page(site):
    _, pages = site
    for nb in NOTEBOOKS:
        cells = [c for c in json.loads((PROC/nb.name).read_text())["cells"]
                 if not re.search(r"^#\|\s*(output|include):\s*false", "".join(c["source"]), re.M)]
        outputs = [set(o.get("data", {})) for c in cells for o in c.get("outputs", [])]
        want = sum(bool({"image/png", "image/jpeg", "image/svg+xml"} & o) for o in outputs)
        page = _page_of(nb)
        shown = [u for t, u in pages[page].resources if t == "img" and u.startswith(Path(page).stem + "_files/")]
        assert len(shown) == want, f"{page}: {len(shown)} image outputs shown, its notebook has {want}"
        assert all((DOCS/u).is_file() for u in shown), f"{page}: an image output is missing from _docs/"


# ---------------------------------------------------------------- links and resources

def _internal(base: str, page: str, url: str) -> str | None:
    "The absolute URL of an internal link or resource (None for external links and data URIs)."
    if url.startswith(("data:", "mailto:", "javascript:")): return None
    full = urljoin(base + page, url)
    return full if full.startswith(base) else None


def test_every_internal_link_and_resource_resolves(site):
    base, pages = site
    seen, broken = {}, []
    for path, p in pages.items():
        for url in p.links + [u for _, u in p.resources]:
            full = _internal(base, path, url)
            if not full: continue
            target, frag = full.split("#", 1) if "#" in full else (full, "")
            if target not in seen:
                try:
                    with urlopen(target, timeout=10) as r: seen[target] = r.status
                except HTTPError as e: seen[target] = e.code
            if seen[target] != 200: broken.append(f"{path}: {url} -> HTTP {seen[target]}"); continue
            rel = urlsplit(target).path.lstrip("/") or "index.html"
            if frag and rel in pages and unquote(frag) not in pages[rel].ids:
                broken.append(f"{path}: {url} -> no element with id {frag!r} in {rel}")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_nothing_loaded_from_the_internet(site):
    base, pages = site
    external = [f"{path}: <{tag}> {url}" for path, p in pages.items() for tag, url in p.resources
                if not url.startswith("data:") and not _internal(base, path, url)]
    assert not external, "pages load these from outside the site (they must read offline):\n" + "\n".join(external)
    web = re.compile(r"@import|url\(\s*['\"]?(https?:)?//")
    for css in DOCS.rglob("*.css"):
        assert not web.search(css.read_text()), f"{css} loads something from the web"
    for path, p in pages.items():
        assert not any(web.search(css) for css in p.styles), f"{path}: an inline style loads from the web"


# ---------------------------------------------------------------- API reference

def _exported_defs(mod: Path) -> dict[str, str]:
    "Functions and classes of a module's `__all__`, with the first line of their docstring."
    tree = ast.parse(mod.read_text())
    names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", None) == "__all__" for t in n.targets)), [])
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return {nm: (ast.get_docstring(defs[nm]) or "").strip().splitlines()[0] if ast.get_docstring(defs[nm]) else ""
            for nm in names if nm in defs}


def _doc_pages() -> dict[str, str]:
    "Module name -> its page, from nbdev's index of the package (`_modidx.py`, written by nbdev-export)."
    ns = {}
    exec((LIB/"_modidx.py").read_text(), ns)
    res = {}
    for mod, syms in ns["d"]["syms"].items():
        for _, (url, _) in syms.items(): res[mod] = url.split("#")[0]; break
    return res


def test_api_reference_has_every_exported_function(site):
    _, pages = site
    doc_pages, missing, checked = _doc_pages(), [], 0
    for mod in sorted(LIB.glob("[!_]*.py")):
        name = f"{LIB.name}.{mod.stem}"
        defs = _exported_defs(mod)
        if not defs: continue
        page = doc_pages.get(name)
        if page not in pages: missing.append(f"{name}: no page for it (expected {page})"); continue
        p = pages[page]
        for sym, doc in defs.items():
            checked += 1
            if not any(t.strip() == sym for _, _, t in p.headings):
                missing.append(f"{page}: no show_doc heading for {sym}"); continue
            if not any(re.search(rf"\b(def|class)\s+{re.escape(sym)}\s*\(", pre) for pre in p.pres):
                missing.append(f"{page}: no signature for {sym}")
            plain = re.sub(r"\s+", " ", doc.replace("`", "")).strip()
            if plain and plain not in p.text: missing.append(f"{page}: the docstring of {sym} is not shown: {plain!r}")
    assert checked, "no exported function found in video_classifier/"
    assert not missing, "API reference incomplete:\n" + "\n".join(missing)


# ---------------------------------------------------------------- in the browser

# What a page shows once loaded: its images (and which did not render), whether the site's CSS applied, its title.
_LOADED = """() => { const imgs = [...document.images], lay = document.querySelector('.layout');
  return {images: imgs.length, title: document.title, styled: !!lay && getComputedStyle(lay).display === 'grid',
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120))}; }"""


def test_pages_render_in_chromium(site, chromium):
    from playwright.sync_api import sync_playwright
    base, pages = site
    order, problems, results = _order(pages), [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 2000})
        tab.on("console", lambda m: m.type == "error" and problems.append(f"{tab.url}: console error: {m.text}"))
        tab.on("pageerror", lambda e: problems.append(f"{tab.url}: script error: {e}"))
        tab.on("requestfailed", lambda r: problems.append(f"{tab.url}: {r.url[:120]} failed ({r.failure})"))
        tab.on("response", lambda r: r.status >= 400 and problems.append(f"{tab.url}: {r.url} -> HTTP {r.status}"))
        for path in order:
            tab.goto(base + path, wait_until="load")
            results[path] = tab.evaluate(_LOADED)
        assert not problems, "while loading the pages:\n" + "\n".join(problems)
        for path, res in results.items():
            assert res["styled"], f"{path}: the site's CSS did not apply"
            assert not res["broken"], f"{path}: images that did not render: {res['broken']}"
            assert res["title"], f"{path}: no title"
            assert res["images"] == sum(t == "img" for t, _ in pages[path].resources), f"{path}: {res}"
        if not results["index.html"]["images"]:
            warnings.warn("the home page (nbs/index.ipynb) shows no picture: issue 6 wants the prediction GIF there")
        # screenshots of the home page, of the first chapter with a figure among its outputs, and of that figure
        chapter = next((p for p in order[1:] if any("_files/" in u for _, u in pages[p].resources)), None)
        assert chapter, "no chapter page shows a figure among its outputs"
        SHOTS.mkdir(parents=True, exist_ok=True)
        for path, name in (("index.html", "index"), (chapter, Path(chapter).stem)):
            tab.goto(base + path, wait_until="load")
            tab.screenshot(path=SHOTS/f"{name}.png")
        tab.locator('img[src*="_files/"]').first.scroll_into_view_if_needed()
        tab.screenshot(path=SHOTS/f"{Path(chapter).stem}-figure.png")
        browser.close()
    shots = [SHOTS/"index.png", SHOTS/f"{Path(chapter).stem}-figure.png"]
    assert all(f.stat().st_size > 20_000 for f in shots), f"blank screenshots among {shots}"


# ---------------------------------------------------------------- the builder's own part, on a made-up notebook

def _builder():
    sys.path.insert(0, str(ROOT/"tools"))
    try: import build_docs
    finally: sys.path.pop(0)
    return build_docs


def _render(cells: list[dict], tmp_path: Path) -> tuple[str, object, Path]:
    "The page build_docs makes of `cells` as the chapter `tmp_path/nbs/00_core.ipynb`: (HTML, its Site, site folder)."
    b = _builder()
    (tmp_path/"nbs").mkdir()
    (tmp_path/"nbs"/"pic.gif").write_bytes(b"GIF89a")
    nb = tmp_path/"_proc"/"00_core.ipynb"
    nb.parent.mkdir()
    cells = [{"id": f"c{i}", "metadata": {}, **c} for i, c in enumerate(cells)]
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    pages = [b.Page(nb.with_name("index.ipynb"), "index.html", "proj"), b.Page(nb, "core.html", "Core", "The `core`.")]
    site = b.Site("proj", tmp_path/"nbs", pages, "https://example.github.io/proj/", "https://github.com/o/proj")
    soup = b.render(site, b.exporter(), pages[1], tmp_path/"site")
    return str(soup), site, tmp_path/"site"


def test_builder_options_links_outputs_and_cards(tmp_path):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    card = ('---\n\n[source](https://github.com/o/proj){target="_blank" style="float:right"}\n\n'
            "### f\n\n```python\ndef f(x):\n```\n\n*Do it.*")  # what nbdev's show_doc writes
    code = lambda src, *outs: {"cell_type": "code", "source": src, "execution_count": 1, "outputs": list(outs)}
    result = lambda data: {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": data}
    cells = [
        {"cell_type": "raw", "source": "---\ntitle: Core\n---"},
        {"cell_type": "markdown", "source": "## A *section*\n\nSee [the index](index.ipynb#top), "
         "[`f`](https://example.github.io/proj/core.html#f), [gone](core.html#nothing), "
         "![badge](https://colab.research.google.com/assets/colab-badge.svg) ![](pic.gif)\n\n"
         "::: {.callout-note}\nA **note**.\n:::\n\n```\n::: kept\n```"},
        code("#| echo: false\n#| output: asis\nshow_doc(f)", result({"text/markdown": card, "text/plain": "f"})),
        code("plot()", {"output_type": "stream", "name": "stdout", "text": "\r 0/9 ..."},
             {"output_type": "stream", "name": "stdout", "text": "\b\b\b\r9/9 done\n"},
             {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure>"}, "metadata": {}},
             result({"text/html": '<img src="data:image/gif;base64,R0lGODlh">', "text/plain": "<HTML>"})),
        code("#| output: false\nsecret()", {"output_type": "stream", "name": "stdout", "text": "hidden"}),
        code("#| include: false\ngone()"),
        code("#| code-fold: show\n#| code-summary: \"Exported source\"\ndef f(x): pass"),
    ]
    html_, site, out = _render(cells, tmp_path)
    p = _Page(html_)
    assert {"a-section", "f"} <= p.ids and ("h3", "f", "f") in p.headings  # pandoc's heading ids, which nbdev links to
    assert "index.html#top" in p.links and "core.html#f" in p.links  # notebooks and the hosted site, made relative
    assert ("img", "site_libs/colab-badge.svg") in p.resources and "pic.gif" in site.files  # served from the site
    figure = "core_files/cell-2-output-1.png"  # the cell's and output's index once hidden cells and streams are gone
    assert [u for t, u in p.resources if "_files/" in u] == [figure] and (out/figure).is_file()
    assert any(u.startswith("data:image/gif") for _, u in p.resources)  # an embedded GIF stays embedded
    assert "9/9 done" in p.text and "0/9" not in p.text  # a progress bar shows as the terminal would
    assert "def f(x):\n" in p.pres and "Do it." in p.text and 'target="_blank"' in html_ and "{target" not in html_
    assert "show_doc" not in html_ and "secret()" in p.text and "hidden" not in html_ and "gone()" not in html_
    assert "title: Core" not in html_ and "<code>core</code>" in html_  # the frontmatter is the header; Markdown in it
    assert '<div class="callout-note">' in html_ and "<strong>note</strong>" in html_ and "::: kept" in p.text
    assert "<summary>Exported source</summary>" in html_ and "celltag_asis" in html_
    soups = {"core.html": BeautifulSoup(html_, "html.parser")}
    assert _builder().unlink_missing_anchors(soups) == ["core.html#nothing"]
    assert "#nothing" not in str(soups["core.html"]) and "gone" in soups["core.html"].get_text()
