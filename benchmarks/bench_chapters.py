"""CPU wall time of every chapter: `pytest tests/test_notebooks.py` for one notebook at a time, into a JSON file.

    python benchmarks/bench_chapters.py                      # every notebook in nbs/, one after the other
    python benchmarks/bench_chapters.py --only 06_model 06b_architecture
    python benchmarks/bench_chapters.py --missing            # only the notebooks the JSON has no time for

Each notebook runs as the test suite runs it (cells flagged slow or cuda skipped), in its own pytest process, so a
time includes starting Python and importing torch. The machine's load average is recorded before and after every
run: on a shared machine the times are upper bounds, and the load says by how much. Results are merged into the
JSON after every notebook (written atomically), so an interrupted run keeps what it measured. The home page's
chapter map (nbs/index.ipynb) reads this file.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mol_edu.core import atomic_write_text  # noqa: E402

OUT = ROOT / "benchmarks" / "chapter_times.json"


def machine() -> dict:
    "What the times were measured on."
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


def time_notebook(name: str) -> dict:
    "Run one notebook's test; its wall time, result and the load average around it."
    node = f"tests/test_notebooks.py::test_notebook_runs[{name}.ipynb]"
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", node, "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    return {"seconds": round(secs, 1), "passed": r.returncode == 0, "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in os.getloadavg()], "measured": time.strftime("%Y-%m-%d %H:%M:%S")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="notebook names (without .ipynb) to time")
    ap.add_argument("--missing", action="store_true", help="time only the notebooks the JSON has no entry for")
    ap.add_argument("--out", default=str(OUT), help="the JSON file to merge the times into")
    a = ap.parse_args(argv)
    out = Path(a.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.setdefault("chapters", {})
    names = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
    if a.only: names = [n for n in names if n in set(a.only)]
    if a.missing: names = [n for n in names if n not in data["chapters"]]
    data["machine"] = machine()
    data["method"] = ("wall time of `pytest tests/test_notebooks.py::test_notebook_runs[<name>.ipynb]`, one notebook "
                      "at a time, slow and cuda cells skipped; load = 1, 5, 15-minute load averages")
    for n in names:
        data["chapters"][n] = time_notebook(n)
        print(f"{n}: {data['chapters'][n]['seconds']} s (load {data['chapters'][n]['load_before'][0]})", flush=True)
        atomic_write_text(out, json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
