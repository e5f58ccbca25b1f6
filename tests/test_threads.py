"""Threads for the cores that are free: other processes' load is seen, and a thread count set by the user or torchrun
(OMP_NUM_THREADS) is never overridden by mol-train."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def test_adapt_threads_gives_a_taken_core_back(tmp_path):
    import torch
    from mol_edu.train import AdaptThreads, Callback, TinyJointNet, ToyMotionClips, Trainer, TrainConfig

    class Pace(Callback):
        "Slow steps (a training step of a real model takes this long), so AdaptThreads gets its counts."
        def after_step(self, t): time.sleep(0.05)

    if usable_cores() < 2: pytest.skip("needs two cores: one for the competitor, one to keep")
    before = torch.get_num_threads()
    p = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        torch.set_num_threads(2)
        time.sleep(0.3)
        watch = AdaptThreads(every=0.5, cores=2)
        Trainer(TinyJointNet(), ToyMotionClips(n=8), TrainConfig(iterations=30, batch_size=4), device="cpu",
                callbacks=[watch, Pace()]).fit()
        assert watch.changes and watch.changes[0][1] == 1, watch.changes   # the busy core's thread is dropped
    finally:
        p.kill(); p.wait(); torch.set_num_threads(before)


def test_mol_train_keeps_counting_unless_told(monkeypatch, tmp_path):
    import torch
    import mol_edu.cli as cli
    seen, real = [], cli.run_loso
    def spy(*a, **k):
        seen.append([type(c).__name__ for c in k.get("callbacks", [])])
        return real(*a, **k)
    monkeypatch.setattr(cli, "run_loso", spy)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        args = dict(arch="tiny", subjects=3, videos_per_class=1, folds=1, iterations=2, quiet=True, runs=str(tmp_path))
        cli.train_main(name="auto", **args)
        cli.train_main(name="pinned", threads=1, **args)
    finally: torch.set_num_threads(before)
    assert seen == [["AdaptThreads"], []]


def test_the_mid_run_benchmark_counts_each_phase_apart():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_midrun import phase_rates
    log = [(0.5, 2), (1.5, 2), (2.2, 1), (2.8, 1), (3.5, 2)]        # (step end time, threads) of a 3-phase run
    rates = phase_rates(log, [0.0, 2.0, 3.0, 4.0])
    assert [r["steps_per_s"] for r in rates] == [1.0, 2.0, 1.0]   # 2 steps in 2 s, 2 in 1 s, 1 in 1 s
    assert [r["threads"] for r in rates] == [[2], [1], [2]]
    assert phase_rates([(5.0, 1)], [0.0, 1.0])[0]["steps_per_s"] == 0.0   # steps outside every phase are not counted


PROBE = """
import resource, sys, torch
from mol_edu.core import reuse_freed_memory
applied = reuse_freed_memory(sys.argv[1] == "reuse")
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2 ** 20)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, *faults)
"""


def test_reused_memory_stops_the_page_faults_of_large_tensors_and_can_be_undone():
    runs = {mode: subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
            for mode in ("reuse", "default")}
    applied = runs["reuse"][0] == "True"
    if not applied: pytest.skip("not glibc: reuse_freed_memory does nothing here")
    reuse, default = [int(x) for x in runs["reuse"][1:]], [int(x) for x in runs["default"][1:]]
    assert runs["default"][0] == "True"                       # restoring the defaults applies too
    assert min(default) > 10_000                              # 64 MiB = 16,384 pages, mapped afresh every round
    assert max(reuse[-3:]) < min(default) / 100, (reuse, default)   # the heap grows at most twice, then is reused
    assert sum(reuse) < sum(default) / 2
