"""The offline docs site: built from the notebooks, navigable, and checked in a real headless Chromium."""
import functools
import html
import http.server
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import docs  # noqa: E402

SITE = ROOT / "_docs"
SHOTS = ROOT / "screenshots"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
SOURCES = [*NOTEBOOKS, ROOT / "_quarto.yml", ROOT / "tools" / "docs.py", *(ROOT / "tools" / "site_assets").glob("*")]
PARTS = ["Start", "Model", "Data", "Training", "Interpretability", "Reference", "More"]


def expected_part(nb: str) -> str:
    "The part a notebook belongs to, by its numeric prefix (restated here, independently of _quarto.yml)."
    if nb.startswith("index."): return "Start"
    m = re.match(r"\d+", nb)
    if m is None: return "More"
    n = int(m.group(0))
    return "Model" if n <= 8 else "Data" if n <= 19 else "Training" if n <= 29 else "Interpretability" if n <= 98 else "Reference"


@pytest.fixture(scope="module")
def site():
    newest = max(p.stat().st_mtime for p in SOURCES)
    if not (SITE / "index.html").exists() or (SITE / "index.html").stat().st_mtime < newest:
        docs.build_site(SITE)
    return SITE


def test_every_notebook_has_a_page_and_the_nav_lists_them_all(site):
    pages = {docs.page_name(p) for p in NOTEBOOKS}
    assert pages <= {p.name for p in site.glob("*.html")}
    title = docs.site_config()["title"]
    for page in pages:
        text = (site / page).read_text(encoding="utf-8")
        nav = re.search(r'<nav class="mol-nav".*?</nav>', text, re.S).group(0)
        assert title in nav  # the title comes from the top-level _quarto.yml
        assert set(re.findall(r'href="([^"#]+\.html)"', nav)) == pages


def visible_text(page_html: str) -> str:
    "The text of a page as a reader sees it, lower-cased, whitespace collapsed (scripts, styles and tags removed)."
    t = re.sub(r"<(script|style)\b.*?</\1>", " ", page_html, flags=re.S | re.I)
    t = re.sub(r"<nav\b.*?</nav>", " ", t, flags=re.S)       # the sidebar, contents and pager repeat other pages
    t = html.unescape(re.sub(r"<[^>]+>", "", t))
    return " ".join(t.split()).lower()


def element_attrs(page_html: str) -> dict[str, dict]:
    "The attributes of every element that has an id, by id."
    from html.parser import HTMLParser
    found = {}
    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if "id" in a: found[a["id"]] = a
    P().feed(page_html)
    return found


def sidebar(text: str) -> list[tuple[str, list[str]]]:
    "The sidebar of a page as [(part title, [page links])]."
    nav = re.search(r'<nav class="mol-nav".*?</nav>', text, re.S).group(0)
    parts = []
    for m in re.finditer(r'<p class="mol-part">([^<]*)</p>|href="([^"#]+\.html)"', nav):
        if m.group(1) is not None: parts.append((html.unescape(m.group(1)), []))
        elif m.group(2) != "index.html" or parts: parts[-1][1].append(m.group(2))   # the site title links index too
    return parts


def pager(text: str) -> dict:
    m = re.search(r'<nav class="mol-pager"[^>]*>(.*?)</nav>', text, re.S)
    assert m, "no previous/next links"
    return dict(re.findall(r'<a class="(prev|next)" rel="\1" href="([^"]+)"', m.group(1)))


def test_sidebar_grouped_by_part_in_order(site):
    order = [docs.page_name(Path(n)) for n in docs.sidebar_order()]
    want = [t for t in PARTS if any(expected_part(p.name) == t for p in NOTEBOOKS)]
    for page in order:
        parts = sidebar((site / page).read_text(encoding="utf-8"))
        assert [t for t, _ in parts] == want, page
        assert [p for _, ps in parts for p in ps] == order      # the links in sidebar order, each once
    by_page = {docs.page_name(p): p.name for p in NOTEBOOKS}
    for title, pages in parts:
        assert pages, f"part {title} is empty"
        for p in pages: assert expected_part(by_page[p]) == title, (p, title)
        names = [by_page[p] for p in pages]
        assert names == sorted(names, key=lambda n: "" if n.startswith("index.") else n)   # chapters in file order


def test_unknown_notebooks_join_the_part_of_their_prefix():
    parts = dict(docs.sidebar_parts(["index.ipynb", "00_core.ipynb", "06b_architecture.ipynb", "09_faces.ipynb",
                                     "14_new_data.ipynb", "28_new_training.ipynb", "34_new_viz.ipynb", "99_api.ipynb"]))
    assert parts["Model"] == ["00_core.ipynb", "06b_architecture.ipynb"]
    assert parts["Data"] == ["09_faces.ipynb", "14_new_data.ipynb"]
    assert parts["Training"] == ["28_new_training.ipynb"] and parts["Interpretability"] == ["34_new_viz.ipynb"]
    odd = dict(docs.sidebar_parts(["index.ipynb", "30_viz.ipynb", "45_later.ipynb", "faq.ipynb"]))
    assert odd["Interpretability"] == ["30_viz.ipynb", "45_later.ipynb"] and odd["More"] == ["faq.ipynb"]
    assert docs.expand_braces("{09,1[0-9]}*.ipynb") == ["09*.ipynb", "1[0-9]*.ipynb"]


def test_every_page_has_previous_and_next_but_the_ends(site):
    order = [docs.page_name(Path(n)) for n in docs.sidebar_order()]
    titles = {}
    for i, page in enumerate(order):
        text = (site / page).read_text(encoding="utf-8")
        links = pager(text)
        assert links.get("prev") == (order[i - 1] if i > 0 else None), page
        assert links.get("next") == (order[i + 1] if i + 1 < len(order) else None), page
        titles[page] = re.search(r"<title>[^<]*?: ([^<]*)</title>", text).group(1)
    nxt = re.search(r'<a class="next"[^>]*>(.*?)</a>', (site / order[0]).read_text(encoding="utf-8"), re.S).group(1)
    assert titles[order[1]] in nxt       # the link names the next page


def test_on_page_contents_lists_the_sections(site):
    for page in ["fcc.html", "explorers.html"]:
        text = (site / page).read_text(encoding="utf-8")
        toc = re.search(r'<nav class="mol-toc".*?</nav>', text, re.S).group(0)
        rest = text.replace(toc, "")
        heads = [html.unescape(h) for h in re.findall(r'<h[23] id="([^"]+)"', rest)]
        assert heads and [html.unescape(h) for h in re.findall(r'href="#([^"]+)"', toc)] == heads, page


def test_search_index_lists_every_page(site):
    f = site / "search.json"
    assert f.stat().st_size < 2_000_000
    data = json.loads(f.read_text(encoding="utf-8"))
    pages = {p["href"]: p for p in data["pages"]}
    assert set(pages) == {docs.page_name(p) for p in NOTEBOOKS}
    for href, p in pages.items():
        text = (site / href).read_text(encoding="utf-8")
        assert p["sections"] and html.escape(p["title"], quote=False) in text
        ids = {html.unescape(i) for i in re.findall(r'<h[1-3] id="([^"]+)"', text)}
        assert {s["id"] for s in p["sections"] if s["id"]} <= ids, href     # every anchor of the index exists
        words = " ".join(s["text"] for s in p["sections"])
        assert len(words) > 100 and words[:60].lower() in visible_text(text), href   # prose of the page itself


def test_static_clip_explorer(site):
    pages = [p for p in site.glob("*.html") if 'id="static-clip-explorer"' in p.read_text(encoding="utf-8")]
    assert [p.name for p in pages] == ["explorers.html"]
    text = pages[0].read_text(encoding="utf-8")
    attrs = element_attrs(text)
    frames = json.loads(attrs["static-clip-explorer"]["data-frames"])
    slider, image = attrs["clip-explorer-pair"], attrs["clip-explorer-image"]
    assert slider["type"] == "range" and slider["min"] == "0" and image["src"] == frames[0]["src"]
    top = int(slider["max"])
    assert len(frames) == top + 1 >= 2
    files = [site / f["src"] for f in frames]
    assert all(f.is_file() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)
    assert len({f.read_bytes() for f in files}) == len(files), "two frame pairs gave the same picture"
    assert sum(f.stat().st_size for f in files) < 1_000_000
    assert all(f"pair {k} " in fr["caption"] for k, fr in enumerate(frames))
    assert "application/vnd.jupyter.widget" not in text and "VBox(children" not in text


def test_no_remote_scripts(site):
    for page in site.glob("*.html"):
        assert not re.search(r'<script[^>]+src="https?:', page.read_text(encoding="utf-8")), page.name


def test_api_reference_is_rendered(site):
    text = (site / "core.html").read_text(encoding="utf-8")
    assert re.search(r"<h3[^>]*>check_shape", text), "show_doc output missing from core.html"
    assert "#| export" not in text and "show_doc(" not in text  # directives and show_doc calls are hidden


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def launch(p):
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)


@pytest.mark.browser
def test_site_in_chromium(server, site):
    if CHROMIUM is None:
        if os.environ.get("CI"): pytest.fail("CI must install Debian's chromium (.ci/run does it with apt-get)")
        pytest.skip("no Chromium here: `apt-get install chromium` to run the browser check")
    from playwright.sync_api import sync_playwright
    # the module page to visit: the first (in sidebar order) with both an API reference and a figure
    order = [docs.page_name(Path(n)) for n in docs.sidebar_order()]
    def has_both(page):
        t = (site / page).read_text(encoding="utf-8")
        return re.search(r"<h3[^>]*>", t) and "<img" in t
    target = next((p for p in order if p != "index.html" and has_both(p)), None)
    assert target, "no module page has both an API reference and a figure"
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/index.html")
        assert page.locator("nav#sidebar").is_visible()
        page.click(f'nav#sidebar a[href="{target}"]')
        page.wait_for_url(f"**/{target}")
        assert page.locator("nav#sidebar a.active").get_attribute("href") == target
        assert page.locator("h3").count() > 0  # show_doc headings
        page.wait_for_selector(".MathJax_CHTML, .MathJax, .MathJax_Display", timeout=30000)  # equations typeset by the local MathJax
        imgs = page.locator("img")
        assert imgs.count() > 0
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
        assert max(widths) > 0, "figures did not load"
        page.screenshot(path=str(SHOTS / f"docs_{target.replace('.html', '')}.png"), full_page=False)
        browser.close()


def search_term(site: Path) -> tuple[str, set, set]:
    """A search phrase that occurs in one to three pages; those pages, and the pages that have all its words (found
    in the pages' own text, not in the index)."""
    texts = {p.name: visible_text(p.read_text(encoding="utf-8")) for p in site.glob("*.html")}
    for term in ("McNemar", "pointing game"):
        phrase = {name for name, t in texts.items() if term.lower() in t}
        words = {name for name, t in texts.items() if all(w in t for w in term.lower().split())}
        if 1 <= len(phrase) <= 3: return term, phrase, words
    pytest.fail("neither 'McNemar' nor 'pointing game' occurs in one to three pages: pick another search word")


@pytest.mark.browser
def test_search_pager_and_static_explorer_in_chromium(server, site):
    if CHROMIUM is None:
        if os.environ.get("CI"): pytest.fail("CI must install Debian's chromium (.ci/run does it with apt-get)")
        pytest.skip("no Chromium here: `apt-get install chromium` to run the browser check")
    from playwright.sync_api import sync_playwright
    term, phrase_pages, word_pages = search_term(site)
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        benign = lambda r: "ERR_ABORTED" in (r.failure or "") or r.url == "about:blank"   # left pages; MathJax's font probe
        page.on("requestfailed", lambda r: None if benign(r) else errors.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 and "favicon" not in r.url else None)
        page.goto(server + "/index.html")
        parts = page.eval_on_selector_all("#sidebar .mol-part", "els => els.map(e => e.textContent)")
        assert parts == [t for t in PARTS if any(expected_part(n.name) == t for n in NOTEBOOKS)]
        # search: type the phrase; the first result is a page with the phrase itself (every result has all its
        # words), and clicking it navigates there
        page.fill("#mol-search", term)
        page.wait_for_selector("#mol-search-results a", timeout=10000)
        found = page.eval_on_selector_all("#mol-search-results a", "els => els.map(e => e.dataset.page)")
        assert found and found[0] in phrase_pages and set(found) <= word_pages, (term, found, phrase_pages)
        assert page.locator("#mol-search-results mark").count() > 0      # the word is highlighted in the results
        target = found[0]
        page.click(f'#mol-search-results a[data-page="{target}"]')
        page.wait_for_url(re.compile(re.escape(target)))
        assert page.locator("nav#sidebar a.active").get_attribute("href") == target
        # previous/next: follow "next" and come back with "previous"
        nxt = page.locator("nav.mol-pager a.next").get_attribute("href")
        page.click("nav.mol-pager a.next")
        page.wait_for_url(f"**/{nxt}")
        page.click("nav.mol-pager a.prev")
        page.wait_for_url(f"**/{target}")
        # the static clip explorer: moving the slider switches the image and the caption
        page.goto(server + "/explorers.html")
        box = page.locator("#static-clip-explorer")
        box.scroll_into_view_if_needed()
        loaded = "() => { const i = document.getElementById('clip-explorer-image'); return i.complete && i.naturalWidth > 0; }"
        page.wait_for_function(loaded)
        src0, cap0 = page.get_attribute("#clip-explorer-image", "src"), page.text_content(".mol-se-caption")
        top = page.eval_on_selector("#clip-explorer-pair",
                                    "s => { s.value = s.max; s.dispatchEvent(new Event('input', {bubbles: true})); return s.max; }")
        src1, cap1 = page.get_attribute("#clip-explorer-image", "src"), page.text_content(".mol-se-caption")
        assert src1 != src0 and cap1 != cap0 and cap1.startswith(f"pair {top} ")
        page.wait_for_function(loaded)
        box.screenshot(path=str(SHOTS / "docs_static_clip_explorer.png"))
        assert not errors, errors
        browser.close()
