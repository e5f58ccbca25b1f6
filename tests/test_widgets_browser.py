"""Real-browser test of the demos: Voila serves a demo notebook on localhost, headless Debian Chromium (driven by
Playwright) renders it, a slider is moved and the picture must change. A screenshot goes to screenshots/ (git-ignored)."""
import json
import os
import shutil
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

# the demo notebook Voila serves: the clip explorer of nbs/32_explorers.ipynb on one small synthetic clip
DEMO_CELLS = [
    "import torch\ntorch.set_num_threads(1)\nfrom mol_edu.core import seed_everything\nfrom mol_edu.model import MOL, MOLConfig\n"
    "from mol_edu.synthetic import make_clip\nfrom mol_edu.action_units import scheme_classes\nfrom mol_edu.widgets import ClipExplorer",
    "seed_everything(0)\nmodel = MOL(MOLConfig.preset('small')).eval()\n"
    "clips = [make_clip('surprise', 'sub01', seed=0, size=model.cfg.image_size)]\n"
    "explorer = ClipExplorer(clips, model, scheme_classes('casme2'))\nexplorer.widget",
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
    path = folder / "clip_explorer_demo.ipynb"
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


def test_clip_explorer_in_chromium(voila, tmp_path):
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS, viewport={"width": 1200, "height": 900})
        try:
            page = ctx.new_page()
            page.goto(voila, timeout=180_000)
            img = page.locator("img.widget-image").first
            img.wait_for(state="visible", timeout=180_000)       # Voila ran the notebook and the widget rendered
            assert "Clip explorer" in page.content()
            page.wait_for_function("() => { const i = document.querySelector('img.widget-image'); "
                                   "return i && i.naturalWidth > 100; }", timeout=60_000)
            before = img.get_attribute("src")
            readout = page.locator(".widget-readout").first      # the "pair k" slider comes first
            assert readout.inner_text().strip() == "0"
            handle = page.locator(".noUi-handle").first
            handle.focus()
            for _ in range(3): handle.press("ArrowRight")         # move the slider to pair 3, as a reader would
            page.wait_for_function("(b) => { const i = document.querySelector('img.widget-image'); "
                                   "return i && i.src !== b; }", arg=before, timeout=120_000)
            page.wait_for_function("() => document.body.innerText.includes('pair 3')", timeout=120_000)
            assert readout.inner_text().strip() == "3"
            assert img.get_attribute("src") != before
            page.screenshot(path=str(SHOTS / "clip_explorer.png"), full_page=True)
        finally:
            ctx.close()
    assert (SHOTS / "clip_explorer.png").stat().st_size > 10_000
