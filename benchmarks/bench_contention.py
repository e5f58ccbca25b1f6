"""The demo's training step on a quiet CPU and beside one competing CPU-bound process, for several thread settings.

    .venv/bin/python benchmarks/bench_contention.py                  # writes benchmarks/contention.json
    .venv/bin/python benchmarks/bench_contention.py --steps 20 --repeats 3

Each setting runs in a fresh process (OpenMP reads its wait policy when it starts), first with nothing else started by
the benchmark, then beside a busy loop the benchmark starts and stops itself. Reported: optimiser steps per second
(batch 16, the demo model, forward + joint loss + backward + AdamW), median over repeats, and the ratio busy/quiet.
The target of a setting that survives a busy core: at least half its quiet throughput with one core taken.
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

SETUP = r"""
import sys, time, json
import torch
from mol_edu.cli import DEMO, build_model, input_size, model_spec
from mol_edu.core import seed_everything, training_threads
from mol_edu.loss import joint_loss
from mol_edu.train import normalise_clip
threads = int(sys.argv[1]); steps = int(sys.argv[2])
torch.set_num_threads(threads if threads > 0 else training_threads())
seed_everything(0)
spec = model_spec("small", 5, **DEMO["model_overrides"]); S, B = input_size(spec), 16
model = build_model(spec).train()
g = torch.Generator().manual_seed(0)
batch = {"clip": torch.rand(B, 1, 8, S, S, generator=g), "flow": torch.randn(B, 7, 2, S, S, generator=g),
         "landmarks": torch.rand(B, 8, 68, 2, generator=g) * S, "label": torch.randint(0, 5, (B,), generator=g)}
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
def step():
    loss = joint_loss(model(normalise_clip(batch["clip"])), batch)["loss"]
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(3): step()
"""

STEP = SETUP + r"""
t0 = time.perf_counter()
for _ in range(steps): step()
print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0), "threads": torch.get_num_threads()}))
"""

BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass\n"

SETTINGS = {   # name -> (threads, extra environment); threads 0 = mol-train's default, `training_threads()`
    "torch default (2 threads, OpenMP spins)": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "1 thread": (1, {}),
    "mol_edu default (training_threads)": (0, {}),
}


def measure(threads: int, env: dict, steps: int) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", STEP, str(threads), str(steps)], env={**e, **env}, capture_output=True,
                       text=True, timeout=1800, cwd=ROOT)
    if r.returncode: raise SystemExit(f"bench_contention: a step run failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def median(v): v = sorted(v); return v[len(v) // 2]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=15); p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "contention.json"))
    a = p.parse_args()
    from mol_edu.core import atomic_write_text, environment_info
    rows, load0 = {}, os.getloadavg()
    for name, (threads, env) in SETTINGS.items():
        quiet = [measure(threads, env, a.steps) for _ in range(a.repeats)]
        busy_proc = subprocess.Popen([sys.executable, "-c", BUSY]); time.sleep(0.5)
        try: busy = [measure(threads, env, a.steps) for _ in range(a.repeats)]
        finally: busy_proc.kill(); busy_proc.wait()
        q, b = median([r["steps_per_s"] for r in quiet]), median([r["steps_per_s"] for r in busy])
        rows[name] = {"threads_used": quiet[0]["threads"], "threads_used_busy": busy[0]["threads"], "quiet_steps_per_s": q,
                      "busy_steps_per_s": b, "busy_over_quiet": b / q,
                      "quiet_all": [r["steps_per_s"] for r in quiet], "busy_all": [r["steps_per_s"] for r in busy]}
        print(f"{name:<42} quiet {q:6.2f} steps/s | one core busy {b:6.2f} steps/s ({b / q:.2f}x)", flush=True)
    out = {"what": "demo model training step (batch 16) quiet and beside one busy-loop process", "steps": a.steps,
           "repeats": a.repeats, "settings": rows, "environment": environment_info("cpu"), "cpu_count": os.cpu_count(),
           "load_average_at_start": load0, "load_average_at_end": os.getloadavg()}
    atomic_write_text(a.out, json.dumps(out, indent=1))
