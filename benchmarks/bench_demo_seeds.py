"""The demo's headline as a spread over training seeds: `mol-train` (the demo's defaults) once per seed.

    .venv/bin/python benchmarks/bench_demo_seeds.py                       # seeds 2024 2025 2026 2027 2028
    .venv/bin/python benchmarks/bench_demo_seeds.py --seeds 1 2 --extra --mer_norm none --out benchmarks/x.json
    .venv/bin/python benchmarks/bench_demo_seeds.py --merge a.json b.json    # runs made in parallel, one JSON

With --threads 1, two of these can run side by side on a 2-core machine (different --seeds, --out and --runs), and
--merge joins their JSONs.

Writes a JSON (default benchmarks/demo_seeds.json) with every run's per-video and per-clip scores, flow and landmark
errors, wall time, the exact command, and what it ran on; prints mean, min and max. The data seed stays fixed: only
the training seed (weights, data order, dropout) changes, so the spread is the spread of training, not of the corpus.
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

from mol_edu.core import atomic_write_text, environment_info  # noqa: E402


def run(seed: int, extra: list, runs: Path, threads: int, reuse: bool = False) -> dict:
    "One mol-train run and its scores; with `reuse`, a finished run of the same name (its options) and seed is read, not redone."
    name = f"seed{seed}" + ("-" + "-".join(a.strip("-") for a in extra) if extra else "")
    cmd = [str(Path(sys.executable).parent / "mol-train"), "--name", name, "--seed", str(seed), "--runs", str(runs),
           "--quiet", *(["--threads", str(threads)] if threads else []), *extra]
    done, t0 = runs / name / "summary.json", time.time()
    if reuse and done.is_file():
        cfg = json.loads((runs / name / "config.json").read_text())
        if cfg["train"]["seed"] != seed: raise SystemExit(f"bench_demo_seeds: {runs / name} holds another seed")
        wall = json.loads(done.read_text()).get("seconds")
    else:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"bench_demo_seeds: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        wall = time.time() - t0
    s = json.loads(done.read_text())
    ran_on = json.loads((runs / name / "config.json").read_text())["environment"]   # the run's own, at its start
    return {"seed": seed, "command": " ".join(["mol-train", *cmd[1:]]), "wall_seconds": wall,
            "git_commit": ran_on.get("git_commit"), "cpu_capability": ran_on.get("cpu_capability"),
            "video": {k: s["fixed/video"][k] for k in ("acc", "uar", "uf1", "wf1", "n")},
            "clip": {k: s["fixed/clip"][k] for k in ("acc", "uar", "uf1", "wf1", "n")},
            **{k: s[k] for k in ("epe", "nme_outer_corners", "nme_eye_centres")}, "folds": s["folds"]}


def spread(rows, unit="video", key="uf1") -> dict:
    v = [r[unit][key] for r in rows]
    return {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "n": len(v)}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025, 2026, 2027, 2028])
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more mol-train options, passed on as they are")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "demo_seeds.json"))
    p.add_argument("--runs", default=str(ROOT / "runs" / "seeds"))
    p.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = mol-train's default)")
    p.add_argument("--merge", nargs="+", default=None, help="join the runs of these JSONs (written by this script) instead")
    a = p.parse_args()
    rows, parts = [], [json.loads(Path(f).read_text()) for f in a.merge or []]
    if parts:
        if len({json.dumps(x["extra"]) for x in parts}) > 1: raise SystemExit("bench_demo_seeds: --merge of runs with other --extra")
        rows = sorted((r for x in parts for r in x["runs"]), key=lambda r: r["seed"])
        a.seeds, a.extra = [], parts[0]["extra"]
    for s in a.seeds:
        rows.append(run(s, a.extra, Path(a.runs), a.threads))
        r = rows[-1]
        print(f"seed {s}: UF1 per video {r['video']['uf1']:.3f} (ACC {r['video']['acc']:.3f}), per clip "
              f"{r['clip']['uf1']:.3f}; EPE {r['epe']:.3f}; NME {r['nme_outer_corners']:.4f}; {r['wall_seconds']:.0f} s", flush=True)
    out = {"what": "mol-train with the demo's defaults, one run per training seed", "extra": a.extra, "runs": rows,
           "uf1_video": spread(rows), "uf1_clip": spread(rows, "clip"), "acc_video": spread(rows, "video", "acc"),
           "environment": parts[0]["environment"] if parts else environment_info("cpu"),
           "load_average": [x["load_average"] for x in parts] if parts else os.getloadavg(), "threads": a.threads or (parts[0].get("threads") if parts else None)}
    atomic_write_text(a.out, json.dumps(out, indent=1))
    u = out["uf1_video"]
    print(f"UF1 per video over {u['n']} seeds: mean {u['mean']:.3f}, min {u['min']:.3f}, max {u['max']:.3f} -> {a.out}")
