"""Threads for the cores that are free: other processes' load is seen, and a thread count set by the user or torchrun
(OMP_NUM_THREADS) is never overridden by mol-train."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from mol_edu.core import busy_cores, training_threads, usable_cores

BUSY = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"


def test_a_busy_process_is_seen_and_gets_no_thread():
    p = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.3)
        assert busy_cores(0.5) >= 0.6
        if usable_cores() > 1: assert training_threads(interval=0.5) < usable_cores()
    finally:
        p.kill(); p.wait()


def test_omp_num_threads_stands(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(Path(sys.executable).parent / "mol-train"), "--arch", "tiny", "--subjects", "3",
                        "--videos_per_class", "1", "--folds", "1", "--iterations", "2", "--quiet", "--runs", str(tmp_path),
                        "--name", "t"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "t" / "config.json").read_text())["environment"]["threads"] == 1
