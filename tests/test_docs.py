"""The offline docs site: built from the notebooks, navigable, and checked in a real headless Chromium."""
import functools
import http.server
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


@pytest.fixture(scope="module")
def site():
    newest = max(p.stat().st_mtime for p in NOTEBOOKS)
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
