"""Pointing-game score per attribution method, trained vs untrained MOL, on held-out synthetic clips.

Usage: python benchmarks/bench_pointing.py runs/<name>/folds/<subject> [--videos 2] [--out benchmarks/pointing_results.json]
The checkpoint folder is one written by `mol-train`; the clips are drawn for its held-out (test) subject.
"""
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from fastcore.script import call_parse

from mol_edu.attribution import METHODS, pointing_benchmark, pointing_clips
from mol_edu.cli import build_model, load_checkpoint_model
from mol_edu.core import seed_everything


@call_parse
def main(checkpoint: str, # a mol-train checkpoint folder, runs/<name>/folds/<test subject>
         videos: int = 2, # synthetic videos per class (seeds 0..videos-1) of the test subject
         n_steps: int = 8, # Integrated Gradients steps
         out: str = "benchmarks/pointing_results.json", # where the numbers go (JSON)
        ):
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    trained, spec, meta = load_checkpoint_model(checkpoint, "cpu")
    seed_everything(0)
    untrained = build_model(spec).eval()                       # same architecture, seeded initial weights
    subject = Path(checkpoint).name
    size = trained.cfg.image_size
    clips = pointing_clips(subject, videos, size)
    res = dict(checkpoint=str(checkpoint), iteration=meta.get("iteration"), test_subject=subject, clips=len(clips),
               machine=f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU",
               torch=torch.__version__, threads=torch.get_num_threads(), methods=list(METHODS),
               settings=dict(videos=videos, n_steps=n_steps, patch=size // 8, stride=size // 8, baseline="onset"))
    for name, model in (("trained", trained), ("untrained", untrained)):
        t = time.time()
        res[name] = pointing_benchmark(model, clips, n_steps=n_steps, patch=size // 8, stride=size // 8)
        res[name + "_seconds"] = round(time.time() - t, 1)
        print(name, {m: round(v["score"], 3) for m, v in res[name].items()})
    path = Path(out); path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(res, f, indent=1); tmp = f.name
    os.replace(tmp, path)
    print(f"wrote {path}")
