"""Every notebook in nbs/ is executed, one test per notebook, in its own process (as nbdev_test would).

Cells flagged `#| slow` or `#| cuda` are skipped unless MOL_EDU_SLOW=1 (`make test-slow`), which runs the `slow`
cells, and the `cuda` cells too where a GPU is present. `#| notest` and `#| eval: false` cells never run.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
TIMEOUT = int(os.environ.get("MOL_EDU_NB_TIMEOUT", "600"))

RUNNER = """
import sys
from pathlib import Path
from nbdev.test import test_nb
ok, secs = test_nb(Path(sys.argv[1]), skip_flags=sys.argv[2].split(), force_flags=sys.argv[3].split(), do_print=True)
print(f"{sys.argv[1]}: {secs:.1f}s")
sys.exit(0 if ok else 1)
"""


def _flags():
    slow = os.environ.get("MOL_EDU_SLOW") == "1"
    force = (["slow"] if slow else []) + (["cuda"] if slow and torch.cuda.is_available() else [])
    skip = [f for f in ("notest", "slow", "cuda") if f not in force]
    return skip, force


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(nb):
    skip, force = _flags()
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", IN_TEST="1")
    r = subprocess.run([sys.executable, "-c", RUNNER, str(nb), " ".join(skip), " ".join(force)],
                       cwd=ROOT / "nbs", env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"{nb.name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
