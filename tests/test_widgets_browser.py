"""Real-browser test of the demos: Voila serves a notebook of the four demos (the shipped trained model, with the
untrained one behind a toggle) on localhost, headless Debian Chromium (driven by Playwright, at a device pixel ratio
of 2, as on a high-density screen) renders it, a slider is moved and the picture must change, and each demo's
picture must carry two device pixels per CSS pixel. A screenshot of each demo goes to screenshots/ (git-ignored)."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser

# the demo notebook Voila serves: the four demos of nbs/32_explorers.ipynb, each tagged with a CSS class to find it
DEMOS = {"clip_explorer": "Clip explorer", "attribution_explorer": "Attribution explorer", "f5c_inside": "F5C inside",
         "micro_expression_lab": "Micro-expression lab"}
DEMO_CELLS = [
    "import torch\ntorch.set_num_threads(2)\nfrom mol_edu.attribution import held_out_clips, trained_and_untrained\n"
    "from mol_edu.widgets import AttributionExplorer, ClipExplorer, F5CInside, MicroExpressionLab\n"
    "models, card = trained_and_untrained()\nclasses = card.model['classes']\nclips = held_out_clips(card)[:2]",
    "d = ClipExplorer(clips, models, classes)\nd.widget.add_class('demo-clip_explorer')\nd.widget",
    "d = AttributionExplorer(clips, models, classes, n_steps=4)\nd.widget.add_class('demo-attribution_explorer')\nd.widget",
    "d = F5CInside(models, clips[0])\nd.widget.add_class('demo-f5c_inside')\nd.widget",
    "d = MicroExpressionLab(models, classes, subject=card.held_out_subjects[0], n_steps=4)\n"
    "d.widget.add_class('demo-micro_expression_lab')\nd.widget",
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_notebook(folder: Path) -> Path:
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None, "id": f"c{i}"}
                    for i, c in enumerate(DEMO_CELLS)],
          "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = folder / "demos.ipynb"
    path.write_text(json.dumps(nb))
    return path


@pytest.fixture()
def voila(tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"): pytest.fail(f"CI must install Debian's chromium at {CHROMIUM} (.ci/run does it with apt-get)")
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (CI does)")
    import playwright.sync_api, voila  # noqa: F401  (dev requirements: a missing one is an install error, not a skip)
    nb = _demo_notebook(tmp_path)
    port = _free_port()
    log = open(tmp_path / "voila.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                             "--VoilaConfiguration.file_allowlist=['.*']", str(nb)],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "api", timeout=2)
                break
            except OSError:
                if proc.poll() is not None: break
                time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"voila exited early: {(tmp_path / 'voila.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try: proc.wait(timeout=10)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


def test_demos_in_chromium(voila, tmp_path):
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS, viewport={"width": 1280, "height": 900},
                                                   device_scale_factor=2)
        try:
            page = ctx.new_page()
            page.goto(voila, timeout=300_000)
            for key, title in DEMOS.items():                      # Voila ran the notebook and every demo rendered
                img = page.locator(f".demo-{key} img.widget-image").first
                img.wait_for(state="visible", timeout=300_000)
                assert title in page.locator(f".demo-{key}").first.inner_text()
            page.wait_for_function("() => [...document.querySelectorAll('img.widget-image')]"
                                   ".filter(i => i.naturalWidth > 100).length >= 4", timeout=120_000)
            for key in DEMOS:                                     # sharp: two device pixels per CSS pixel
                natural, shown = page.locator(f".demo-{key} img.widget-image").first.evaluate(
                    "i => [i.naturalWidth, i.getBoundingClientRect().width]")
                assert natural >= 1.9 * shown and shown > 600, (key, natural, shown)
            clip = page.locator(".demo-clip_explorer")
            img = clip.locator("img.widget-image").first
            before = img.get_attribute("src")
            readout = clip.locator(".widget-readout").first      # the "pair k" slider comes first
            assert readout.inner_text().strip() == "0"
            handle = clip.locator(".noUi-handle").first
            handle.focus()
            for _ in range(3): handle.press("ArrowRight")         # move the slider to pair 3, as a reader would
            page.wait_for_function("(b) => { const i = document.querySelector('.demo-clip_explorer img.widget-image'); "
                                   "return i && i.src !== b; }", arg=before, timeout=120_000)
            page.wait_for_function("() => document.querySelector('.demo-clip_explorer').innerText.includes('pair 3')",
                                   timeout=120_000)
            assert readout.inner_text().strip() == "3"
            for key in DEMOS:
                page.locator(f".demo-{key}").first.screenshot(path=str(SHOTS / f"{key}.png"))
            page.screenshot(path=str(SHOTS / "demos.png"), full_page=True)
        finally:
            ctx.close()
    for key in DEMOS:
        assert (SHOTS / f"{key}.png").stat().st_size > 10_000, key
