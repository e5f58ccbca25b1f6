"""Rebuild the shipped synthetic-small MOL with the command its card records, and compare the scores.

    .venv/bin/python benchmarks/bench_pretrained.py             # rebuild, compare, write benchmarks/pretrained_rebuild.json
    .venv/bin/python benchmarks/bench_pretrained.py --export    # ... and replace the shipped model with the rebuilt one

The card's numbers are those of the run that made the shipped weights (`export_pretrained` copies them from its
summary). This benchmark reruns the card's command in a scratch folder and records both sets of held-out scores and
their largest difference, with the machine and load it ran on. Training is seeded: on the machine and thread count
of the card the rebuild is the same model; elsewhere floating-point sums differ in their last bits and the scores
move a little.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mol_edu.core import atomic_write_text, environment_info  # noqa: E402
from mol_edu.pretrained import export_pretrained, read_card  # noqa: E402

COMPARED = ("uf1", "uar", "acc", "clip_acc", "epe", "nme_outer_corners", "nme_eye_centres")


def rebuild(name: str, runs: Path) -> tuple:
    "(rebuilt card, wall seconds, shipped card): the card's command rerun under `runs`, exported to runs/models."
    card = read_card(name)
    argv = shlex.split(card.command)
    if argv[0] != "mol-train": raise SystemExit(f"bench_pretrained: card command {card.command!r} is not mol-train")
    run_name = card.options["name"]
    cmd = [str(Path(sys.executable).parent / "mol-train"), *argv[1:], "--runs", str(runs), "--quiet"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"bench_pretrained: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return export_pretrained(runs / run_name, name, runs / "models"), time.time() - t0, card


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", default="synthetic-small")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "pretrained_rebuild.json"))
    p.add_argument("--export", action="store_true", help="also replace the shipped model with the rebuilt one")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        new, seconds, card = rebuild(a.name, Path(tmp))
        if a.export:
            from mol_edu.pretrained import pretrained_dir
            export_pretrained(Path(tmp) / card.options["name"], a.name, pretrained_dir())
    diff = {k: abs(new.scores[k] - card.scores[k]) for k in COMPARED if card.scores.get(k) is not None}
    out = {"what": f"the {a.name} card's command rerun from scratch; held-out scores of the card and of the rebuild",
           "command": card.command, "card": {k: card.scores[k] for k in COMPARED}, "rebuilt": {k: new.scores[k] for k in COMPARED},
           "max_abs_difference": max(diff.values()), "same_weights": new.weights_sha256 == card.weights_sha256,
           "wall_seconds": seconds, "card_environment": card.environment, "environment": environment_info("cpu"),
           "load_average": os.getloadavg()}
    atomic_write_text(a.out, json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("card", "rebuilt", "max_abs_difference", "same_weights", "wall_seconds")}, indent=1))
