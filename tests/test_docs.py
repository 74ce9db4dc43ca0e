"""The docs site that `make docs` builds into `_docs/`, served on 127.0.0.1 and loaded in headless Chromium.

Checks: a home page and one page per chapter, in chapter order, with navigation on every page; every internal
link and image resolves; nothing is loaded from the internet; every exported function and class has its
`show_doc` entry (signature and docstring); every page renders in the browser with all its images, and
screenshots of the home page and a chapter with figures go to `artifacts/screenshots/`.
"""
import ast, functools, html, json, os, re, shutil, struct, subprocess, sys, tempfile, threading, warnings
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS, NBS, LIB = ROOT/"_docs", ROOT/"nbs", ROOT/"video_classifier"
SHOTS = ROOT/"artifacts"/"screenshots"
NOTEBOOKS = sorted(NBS.glob("*.ipynb"))
CHAPTERS = sorted(NBS.glob("[0-9][0-9]_*.ipynb"))
# Every request the browser makes to a host other than the test server fails: the pages must read offline.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


# ---------------------------------------------------------------- the site and its server

def _build_if_stale():
    "Build the site when it is missing or older than a notebook (`make docs` has normally just built it)."
    index = DOCS/"index.html"
    newest = max(p.stat().st_mtime for p in [*NOTEBOOKS, ROOT/"tools"/"build_docs.py"])
    if not index.exists() or index.stat().st_mtime < newest:
        subprocess.run([sys.executable, str(ROOT/"tools"/"build_docs.py")], cwd=ROOT, check=True)


class _Page(HTMLParser):
    "What the tests need from one page: ids, links, resources, sidebar, prev/next, headings and text."
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.resources, self.sidebar, self.prevnext = set(), [], [], [], {}
        self.headings, self.pres, self.texts = [], [], []
        self._nav, self._a, self._h, self._pre, self._inline_css = None, None, None, None, []
        self.feed(text)
        self.text = re.sub(r"\s+", " ", "".join(self.texts))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a: self.ids.add(a["id"])
        if tag == "a" and a.get("name"): self.ids.add(a["name"])
        if tag == "nav": self._nav = a.get("class", "")
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
            if self._nav == "sidebar": self._a = ["sidebar", a["href"], ""]
            if a.get("rel") in ("prev", "next"): self.prevnext[a["rel"]] = a["href"]
        if tag in ("img", "script", "iframe", "source", "video", "audio", "embed", "input") and a.get("src"):
            self.resources.append((tag, a["src"]))
        if tag == "video" and a.get("poster"): self.resources.append((tag, a["poster"]))
        if tag == "link" and a.get("href") and set(a.get("rel", "").split()) & {"stylesheet", "icon", "preload", "modulepreload"}:
            self.resources.append((tag, a["href"]))
        if tag == "style": self._inline_css.append("")
        if re.fullmatch(r"h[1-6]", tag): self._h = [tag, a.get("id"), ""]
        if tag == "pre": self._pre = ""

    def handle_endtag(self, tag):
        if tag == "nav": self._nav = None
        if tag == "a" and self._a: self.sidebar.append((self._a[1], self._a[2].strip())); self._a = None
        if self._h and tag == self._h[0]: self.headings.append(tuple(self._h)); self._h = None
        if tag == "pre" and self._pre is not None: self.pres.append(self._pre); self._pre = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._a: self._a[2] += data
        if self._h: self._h[2] += data
        if self._pre is not None: self._pre += data
        if self._inline_css and self.lasttag == "style": self._inline_css[-1] += data


_CHECK = """<script>(function(){var errs=[];
window.addEventListener('error',function(e){var t=e.target;errs.push(t&&(t.src||t.href)?'resource: '+(t.src||t.href):'script: '+e.message);},true);
window.addEventListener('load',function(){setTimeout(function(){
var imgs=Array.prototype.slice.call(document.images);
var bad=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0);}).map(function(i){return (i.getAttribute('src')||'').slice(0,120);});
var lay=document.querySelector('.layout');
document.documentElement.setAttribute('data-check',JSON.stringify({images:imgs.length,rendered:imgs.length-bad.length,broken:bad,
errors:errs,title:document.title,styled:!!lay&&getComputedStyle(lay).display==='grid',
widths:imgs.map(function(i){return i.naturalWidth;})}));},0);});})();</script>"""


# Headless Chromium's --screenshot ignores scrolling, so to show a figure further down, the test server can
# serve a page that starts at the cell holding element `ID` (`?from=ID`).
_FROM = """<script>document.addEventListener('DOMContentLoaded',function(){
var c=document.getElementById(%s).closest('main > *'),m=document.querySelector('main');
while(m.firstElementChild&&m.firstElementChild!==c)m.removeChild(m.firstElementChild);});</script>"""


class _Handler(SimpleHTTPRequestHandler):
    "Serves `_docs/`; `?check` adds a script that reports, in the DOM, every image that did not render."
    def log_message(self, *args): pass

    def do_GET(self):
        u = urlsplit(self.path)
        if (u.query == "check" or u.query.startswith("from=")) and u.path.endswith(".html"):
            f = Path(self.translate_path(u.path))
            script = _CHECK if u.query == "check" else _FROM % json.dumps(unquote(u.query[5:]))
            if f.is_file():
                body = f.read_text(encoding="utf-8").replace("<head>", "<head>" + script, 1).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        super().do_GET()


@pytest.fixture(scope="module")
def site():
    "The built site served on 127.0.0.1 (a free port), with every page parsed: (base URL, {path: _Page})."
    _build_if_stale()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(DOCS)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pages = {p.relative_to(DOCS).as_posix(): _Page(p.read_text(encoding="utf-8")) for p in sorted(DOCS.rglob("*.html"))}
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
    assert len(_order(pages)) == len(NOTEBOOKS), f"sidebar has {len(_order(pages))} pages for {len(NOTEBOOKS)} notebooks"
    assert _order(pages)[0] == "index.html"
    assert set(_order(pages)) <= set(pages), f"sidebar links to pages that were not built: {set(_order(pages)) - set(pages)}"


def test_every_page_has_sidebar_and_prev_next(site):
    _, pages = site
    order = _order(pages)
    for i, path in enumerate(order):
        p = pages[path]
        assert [h for h, _ in p.sidebar] == order, f"{path}: its sidebar differs from the home page's"
        want = {k: v for k, v in (("prev", order[i-1] if i else None), ("next", order[i+1] if i + 1 < len(order) else None)) if v}
        assert p.prevnext == want, f"{path}: previous/next links {p.prevnext}, expected {want}"
        assert len(p.text) > 200, f"{path}: almost no text"


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
    for css in DOCS.rglob("*.css"):
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css.read_text()), f"{css} loads something from the web"
    for path, p in pages.items():
        for css in p._inline_css:
            assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css), f"{path}: an inline style loads from the web"


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

def _chromium(browser: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def _check_in_browser(browser: str, url: str) -> dict:
    "Load `url` (with the image-check script) and return what the script found."
    r = _chromium(browser, "--virtual-time-budget=15000", "--dump-dom", url + "?check")
    m = re.search(r'data-check="([^"]*)"', r.stdout)
    assert m, f"{url}: the page did not finish loading in Chromium (exit {r.returncode}): {r.stderr[-800:]}"
    return json.loads(html.unescape(m.group(1)))


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_pages_render_in_chromium(site, chromium):
    base, pages = site
    order = _order(pages)
    results = {path: _check_in_browser(chromium, base + path) for path in order}
    for path, res in results.items():
        assert res["styled"], f"{path}: the site's CSS did not apply"
        assert not res["broken"], f"{path}: images that did not render: {res['broken']}"
        assert not res["errors"], f"{path}: errors while loading: {res['errors']}"
        assert res["title"], f"{path}: no title"
    # the home page and the first chapter with figures among its outputs render them all
    chapter = next((p for p in order[1:] if "_files/figure-html/" in " ".join(u for _, u in pages[p].resources)), None)
    assert chapter, "no chapter page shows a figure among its outputs"
    for path in ("index.html", chapter):
        res = results[path]
        assert res["rendered"] == res["images"] == sum(t == "img" for t, _ in pages[path].resources), f"{path}: {res}"
    assert results[chapter]["rendered"] >= 1 and min(results[chapter]["widths"]) > 0
    if not results["index.html"]["images"]:
        warnings.warn("the home page (nbs/index.ipynb) shows no picture yet: issue 6 wants the prediction GIF or a frame strip there")
    # screenshots of both, and of the chapter's first figure, kept as artifacts
    SHOTS.mkdir(parents=True, exist_ok=True)
    figure = next(Path(u).stem for _, u in pages[chapter].resources if "_files/figure-html/" in u)  # its div's id
    for path, name in (("index.html", "index"), (chapter, Path(chapter).stem), (f"{chapter}?from={figure}", Path(chapter).stem + "-figure")):
        shot = SHOTS/(name + ".png")
        shot.unlink(missing_ok=True)
        r = _chromium(chromium, "--window-size=1200,2000", f"--screenshot={shot}", base + path)
        assert shot.exists(), f"no screenshot of {path}: {r.stderr[-800:]}"
        assert _png_size(shot) == (1200, 2000) and shot.stat().st_size > 20_000, f"{shot}: blank or wrong size"


# ---------------------------------------------------------------- the renderer alone, on a made-up notebook

class _Cfg(dict):
    "Just enough of nbdev's config for `build_docs.Renderer`."
    __getattr__ = dict.__getitem__


def _render(cells: list[dict], tmp_path: Path) -> str:
    sys.path.insert(0, str(ROOT/"tools"))
    try: import build_docs
    finally: sys.path.pop(0)
    (tmp_path/"nbs").mkdir()
    (tmp_path/"nbs"/"pic.gif").write_bytes(b"GIF89a")
    cfg = _Cfg(doc_host="https://example.github.io", doc_baseurl="/proj", nbs_path=tmp_path/"nbs", lib_name="proj",
               title="proj", git_url="https://github.com/o/proj")
    nb = {"cells": cells, "metadata": {}}
    pages = [build_docs.Page(tmp_path/"nbs"/"index.ipynb", tmp_path/"index.ipynb", "index.html", "proj", "", {"cells": []}),
             build_docs.Page(tmp_path/"nbs"/"00_core.ipynb", tmp_path/"00_core.ipynb", "core.html", "Core", "The `core`.", nb)]
    out = tmp_path/"site"
    r = build_docs.Renderer(cfg, pages, out)
    text = r.render(pages[1])
    return text, r, out


def test_renderer_outputs_links_and_options(tmp_path):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    cells = [
        {"cell_type": "markdown", "source": "## A *section*\n\nSee [the index](index.ipynb#top), [`f`](https://example.github.io/proj/core.html#f), "
                                            "![badge](https://colab.research.google.com/assets/colab-badge.svg) ![](pic.gif)"},
        {"cell_type": "code", "source": "#| echo: false\n#| output: asis\nshow_doc(f)", "metadata": {}, "outputs": [
            {"output_type": "execute_result", "data": {"text/markdown": "---\n\n[source](https://github.com/o/proj){target=\"_blank\"}\n\n### f\n\n```python\ndef f(x):\n```\n\n*Do it.*",
                                                       "text/plain": "f"}}]},
        {"cell_type": "code", "source": "plot()", "metadata": {}, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "\r 0/9 ..."},
            {"output_type": "stream", "name": "stdout", "text": "\b\b\b\b\b\b\b\b\b\r9/9 done\n"},
            {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure>"}, "metadata": {}},
            {"output_type": "execute_result", "data": {"text/html": "<img src=\"data:image/gif;base64,R0lGODlh\">", "text/plain": "<HTML>"}}]},
        {"cell_type": "code", "source": "#| output: false\nsecret()", "metadata": {}, "outputs": [{"output_type": "stream", "name": "stdout", "text": "hidden"}]},
        {"cell_type": "code", "source": "#| include: false\ngone()", "metadata": {}, "outputs": []},
    ]
    html_, r, out = _render(cells, tmp_path)
    p = _Page(html_)
    assert {"a-section", "f", "cell-2-output-2"} <= p.ids  # pandoc's heading ids; figure ids
    assert "index.html#top" in p.links and "core.html#f" in p.links  # notebooks and the hosted site, made relative
    assert ("img", "site_libs/colab-badge.svg") in p.resources  # the Colab badge is served locally
    assert ("img", "core_files/figure-html/cell-2-output-2.png") in p.resources and (out/"core_files/figure-html/cell-2-output-2.png").exists()
    assert any(u.startswith("data:image/gif") for _, u in p.resources)  # an embedded GIF stays embedded
    assert (tmp_path/"nbs"/"pic.gif", "pic.gif") in r.resources  # a picture next to the notebook is copied
    assert "9/9 done" in p.text and "0/9" not in p.text  # a progress bar shows as the terminal would
    assert "def f(x):\n" in p.pres and "Do it." in p.text and 'target="_blank"' in html_
    assert "show_doc" not in html_ and "secret()\n" in p.pres and "hidden" not in html_ and "gone()" not in html_
    assert "<code>core</code>" in html_  # the description is Markdown
