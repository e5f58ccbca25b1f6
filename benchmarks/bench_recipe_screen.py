"""Screen training recipes for the demo on validation corpora, never on the demo's own test videos.

    .venv/bin/python benchmarks/bench_recipe_screen.py --data_seeds 1 --out /tmp/a.json &
    .venv/bin/python benchmarks/bench_recipe_screen.py --data_seeds 2 --out /tmp/b.json
    .venv/bin/python benchmarks/bench_recipe_screen.py --merge /tmp/a.json /tmp/b.json   # -> benchmarks/recipe_screen.json
    .venv/bin/python benchmarks/bench_recipe_screen.py --merge benchmarks/recipe_screen.json /tmp/c.json --keep demo x \
        --out benchmarks/recipe_screen_x.json      # candidate x against the base runs of an earlier screen (same CPU kind)

Each candidate is `name=mol-train options` (the demo's defaults plus those options). Every candidate is trained with
the same training seeds on the same validation corpora: the synthetic corpus drawn with `--data_seed S` for S in
`--data_seeds` (the same 24 identities and the same 3 test subjects as the demo, but other videos; the demo's corpus is
data seed 0 and is never used here). Scores are UF1 per video; each candidate is compared with the first one
(the demo's recipe) run by run, paired on (data seed, training seed). A recipe chosen here is then checked on the demo's
own corpus with `bench_demo_seeds.py --extra <its options>`, which is the only run that touches the demo's test videos.
Finished runs (their folders under `--runs`) are read instead of trained again, so an interrupted screen resumes.
"""
import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_demo_seeds import run  # noqa: E402
from mol_edu.core import atomic_write_text, environment_info  # noqa: E402

DEFAULT_CANDIDATES = ["demo=", "lr 5e-4=--lr 5e-4", "lr 2e-3=--lr 2e-3", "batch 32=--batch_size 32"]


def parse_candidate(text: str) -> tuple:
    if "=" not in text: raise SystemExit(f"bench_recipe_screen: candidate {text!r}: expected name=options")
    name, opts = text.split("=", 1)
    return name.strip(), shlex.split(opts)


def compare(rows: list, base: str) -> dict:
    "Per candidate: mean, min and max UF1 per video, and the paired difference to `base` with a bootstrap interval."
    by = {}
    for r in rows: by.setdefault(r["candidate"], {})[(r["data_seed"], r["seed"])] = r["video"]["uf1"]
    out, rng = {}, np.random.default_rng(0)
    for name, runs in by.items():
        v = np.array(list(runs.values()))
        entry = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "n": len(v)}
        common = sorted(set(runs) & set(by.get(base, {})))
        if name != base and common:
            d = np.array([runs[k] - by[base][k] for k in common])
            boot = rng.choice(d, (10000, len(d))).mean(1)
            entry["minus_" + base] = {"mean": float(d.mean()), "low": float(np.quantile(boot, 0.025)),
                                      "high": float(np.quantile(boot, 0.975)), "wins": int((d > 0).sum()), "n": len(d)}
        out[name] = entry
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", nargs="+", default=DEFAULT_CANDIDATES, help="name=mol-train options; the first is the base")
    p.add_argument("--data_seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default=str(ROOT / "runs" / "screen"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "recipe_screen.json"))
    p.add_argument("--merge", nargs="+", default=None, help="join the JSONs of runs made in parallel instead")
    p.add_argument("--keep", nargs="+", default=None, help="with --merge: only these candidates (e.g. a base from an earlier screen)")
    a = p.parse_args()
    if a.merge:
        parts = [json.loads(Path(f).read_text()) for f in a.merge]
        rows = [r for x in parts for r in x["runs"] if a.keep is None or r["candidate"] in a.keep]
        seen = [(r["candidate"], r["data_seed"], r["seed"]) for r in rows]
        if len(set(seen)) < len(seen): raise SystemExit("bench_recipe_screen: --merge of parts that hold the same run twice")
        cands = []                                                   # each candidate once, the first part's first
        for c in (c for x in parts for c in x["candidates"]):
            same = [d for d in cands if d["name"] == c["name"]]
            if same and same[0]["options"] != c["options"]:
                raise SystemExit(f"bench_recipe_screen: --merge: candidate {c['name']!r} has other options in another part")
            if not same and (a.keep is None or c["name"] in a.keep): cands.append(c)
        if a.keep and sorted(c["name"] for c in cands) != sorted(set(a.keep)):
            raise SystemExit(f"bench_recipe_screen: --keep {a.keep}: the parts hold {[c['name'] for c in cands]}")
        kinds = {x["environment"].get("cpu_capability") for x in parts}
        if len(kinds) > 1: raise SystemExit(f"bench_recipe_screen: --merge of runs from other CPU kinds {sorted(map(str, kinds))}: "
                                            "their runs differ, so they do not pair")
        env, loads = parts[0]["environment"], [x["load_average"] for x in parts]
    else:
        cands, rows, env, loads = [], [], environment_info("cpu"), [os.getloadavg()]
        for text in a.candidates:
            name, opts = parse_candidate(text)
            cands.append({"name": name, "options": opts})
            for ds in a.data_seeds:
                for s in a.seeds:
                    if ds == 0: raise SystemExit("bench_recipe_screen: data seed 0 is the demo's corpus; screen on others")
                    r = run(s, ["--data_seed", str(ds), *opts], Path(a.runs) / f"ds{ds}", a.threads, reuse=True)
                    rows.append({"candidate": name, "data_seed": ds, **r})
                    print(f"{name} | data seed {ds} | seed {s}: UF1 per video {r['video']['uf1']:.3f} "
                          f"({r['wall_seconds']:.0f} s)", flush=True)
        loads.append(os.getloadavg())
    command = "python benchmarks/bench_recipe_screen.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    parts_run = [x["command"] for x in parts] if a.merge else []       # what produced the merged runs
    out = {"what": "demo recipes screened on validation corpora (data seeds other than the demo's 0)", "command": command,
           **({"parts": parts_run} if parts_run else {}),
           "candidates": cands, "runs": rows, "scores": compare(rows, cands[0]["name"]), "environment": env,
           "load_average": loads, "threads": a.threads}
    atomic_write_text(a.out, json.dumps(out, indent=1))
    for name, e in out["scores"].items():
        d = e.get("minus_" + cands[0]["name"])
        print(f"{name}: UF1 per video mean {e['mean']:.3f} [{e['min']:.3f}, {e['max']:.3f}] over {e['n']} runs"
              + (f"; minus {cands[0]['name']} {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], "
                 f"wins {d['wins']}/{d['n']}" if d else ""))
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
