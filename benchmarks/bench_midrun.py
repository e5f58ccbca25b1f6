"""The demo's training step when a competing CPU-bound process starts after training has begun, and stops again.

    .venv/bin/python benchmarks/bench_midrun.py                  # writes benchmarks/contention_midrun.json
    .venv/bin/python benchmarks/bench_midrun.py --phase 20 --repeats 1

Each setting trains in a fresh process for three phases of `--phase` seconds: quiet, beside a busy loop the benchmark
starts at the end of the first phase, and quiet again after it stops the loop. Reported per phase: optimiser steps
per second (batch 16, the demo model, as in bench_contention.py) over the whole phase (the time the setting takes to
notice a change counts against it) and the threads the step ran with. `AdaptThreads` is the callback `mol-train`
installs when it chooses the threads itself (chapter 21); the child drives it exactly as the Trainer does, once per
step. Targets: beside the busy loop, at least half the quiet throughput; after it stops, the quiet throughput again.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_contention import BUSY, SETUP, median  # noqa: E402

LOOP = SETUP + r"""
from types import SimpleNamespace
from mol_edu.train import AdaptThreads
adapt = AdaptThreads(every=float(sys.argv[4])) if sys.argv[3] == "adapt" else None
trainer = SimpleNamespace(device=torch.device("cpu"), iteration=0)
if adapt: adapt.before_fit(trainer)
print("ready", time.time(), flush=True)
end, log = time.time() + steps, []
while time.time() < end:
    step(); trainer.iteration += 1
    log.append((time.time(), torch.get_num_threads()))
    if adapt: adapt.after_step(trainer)
print(json.dumps(log))
"""

SETTINGS = {   # name -> (threads, mode); threads 0 = `training_threads()` at the start
    "torch default (2 threads)": (2, "fixed"),
    "1 thread": (1, "fixed"),
    "mol-train default (training_threads + AdaptThreads)": (0, "adapt"),
}


def phase_rates(log: list, bounds: list) -> list:
    "Steps per second and the threads of each phase [bounds[i], bounds[i+1]) from a log of (end time, threads)."
    out = []
    for a, b in zip(bounds, bounds[1:]):
        inside = [th for t, th in log if a <= t < b]
        out.append({"steps_per_s": len(inside) / (b - a), "threads": sorted(set(inside))})
    return out


def run_setting(threads: int, mode: str, phase: float, every: float) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    child = subprocess.Popen([sys.executable, "-c", LOOP, str(threads), str(int(3 * phase)), mode, str(every)],
                             env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    first = child.stdout.readline().split()
    if not first or first[0] != "ready": raise SystemExit(f"bench_midrun: the training child did not start ({first})")
    t0 = float(first[1])
    time.sleep(max(0.0, t0 + phase - time.time()))
    busy = subprocess.Popen([sys.executable, "-c", BUSY]); t1 = time.time()
    time.sleep(max(0.0, t0 + 2 * phase - time.time()))
    busy.kill(); busy.wait(); t2 = time.time()
    out, _ = child.communicate(timeout=3 * phase + 600)
    if child.returncode: raise SystemExit(f"bench_midrun: the training child failed (exit {child.returncode})")
    return phase_rates(json.loads(out.strip().splitlines()[-1]), [t0, t1, t2, t0 + 3 * phase])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--phase", type=float, default=30.0, help="seconds of each phase (quiet, busy, quiet)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--every", type=float, default=5.0, help="AdaptThreads' seconds between two counts")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "contention_midrun.json"))
    a = p.parse_args()
    from mol_edu.core import atomic_write_text, environment_info
    rows, load0, names = {}, os.getloadavg(), ("quiet", "busy", "quiet_again")
    for name, (threads, mode) in SETTINGS.items():
        runs = [run_setting(threads, mode, a.phase, a.every) for _ in range(a.repeats)]
        row = {}
        for i, ph in enumerate(names):
            row[ph] = median([r[i]["steps_per_s"] for r in runs])
            row[ph + "_all"] = [r[i]["steps_per_s"] for r in runs]
            row[ph + "_threads"] = sorted({t for r in runs for t in r[i]["threads"]})
        row["busy_over_quiet"], row["again_over_quiet"] = row["busy"] / row["quiet"], row["quiet_again"] / row["quiet"]
        rows[name] = row
        print(f"{name:<52} quiet {row['quiet']:5.2f} | busy {row['busy']:5.2f} ({row['busy_over_quiet']:.2f}x) | "
              f"quiet again {row['quiet_again']:5.2f} ({row['again_over_quiet']:.2f}x) steps/s", flush=True)
    out = {"what": "demo model training step (batch 16); a busy loop starts after one phase and stops after two",
           "phase_s": a.phase, "repeats": a.repeats, "adapt_every_s": a.every, "settings": rows,
           "environment": environment_info("cpu"), "cpu_count": os.cpu_count(),
           "load_average_at_start": load0, "load_average_at_end": os.getloadavg()}
    atomic_write_text(a.out, json.dumps(out, indent=1))
