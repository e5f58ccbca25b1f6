"""Pointing-game score per attribution method, trained vs untrained MOL, on held-out synthetic clips.

Usage: python benchmarks/bench_pointing.py [--pretrained synthetic-small] [--checkpoint runs/<name>/folds/<subject>]
                                          [--videos 2] [--out benchmarks/pointing_results.json]
By default the model is the shipped one (`mol_edu.pretrained.load_pretrained`) and the clips are fresh videos of the
subject it never saw (`held_out_clips`: the first clip of `videos` videos per class from `held_out_corpus(card)`). With
--checkpoint the model is a `mol-train` fold checkpoint instead, and the clips are `pointing_clips` of that fold's test
subject (the folder's name). The untrained model is the same architecture with its seeded initial weights.
"""
import json
import os
import platform
import time
from pathlib import Path

import torch
from fastcore.script import call_parse

from mol_edu.attribution import METHODS, held_out_clips, pointing_benchmark, pointing_clips
from mol_edu.cli import build_model, load_checkpoint_model
from mol_edu.core import atomic_write_text, seed_everything


def trained_model(pretrained: str, checkpoint: str, videos: int):
    "(trained model, model spec, description dict, held-out clips) from a shipped model or a mol-train checkpoint."
    if checkpoint:
        model, spec, meta = load_checkpoint_model(checkpoint, "cpu")
        about = dict(checkpoint=str(checkpoint), iteration=meta.get("iteration"), test_subject=Path(checkpoint).name,
                     clip_source=f"pointing_clips({Path(checkpoint).name!r}, videos={videos})")
        return model, spec, about, pointing_clips(Path(checkpoint).name, videos, model.cfg.image_size)
    from mol_edu.pretrained import load_pretrained
    model, card = load_pretrained(pretrained, "cpu")
    about = dict(pretrained=pretrained, command=card.command, weights_sha256=card.weights_sha256, note=card.note,
                 test_subject=card.held_out_subjects[0], clip_source=f"held_out_clips(card, seed=1, per_class={videos})")
    return model, card.model, about, held_out_clips(card, seed=1, per_class=videos)


@call_parse
def main(pretrained: str = "synthetic-small", # a shipped model (used unless --checkpoint is given)
         checkpoint: str = "", # a mol-train checkpoint folder, runs/<name>/folds/<test subject>, instead
         videos: int = 2, # fresh synthetic videos per class of the held-out subject
         n_steps: int = 8, # Integrated Gradients steps
         out: str = "benchmarks/pointing_results.json", # where the numbers go (JSON)
        ):
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    trained, spec, about, clips = trained_model(pretrained, checkpoint, videos)
    seed_everything(0)
    untrained = build_model(spec).eval()                       # same architecture, seeded initial weights
    size = trained.cfg.image_size
    res = dict(**about, clips=len(clips), videos=[c.video for c in clips],
               machine=f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU",
               torch=torch.__version__, threads=torch.get_num_threads(), methods=list(METHODS),
               settings=dict(videos=videos, n_steps=n_steps, patch=size // 8, stride=size // 8, baseline="onset"))
    for name, model in (("trained", trained), ("untrained", untrained)):
        t = time.time()
        res[name] = pointing_benchmark(model, clips, n_steps=n_steps, patch=size // 8, stride=size // 8)
        res[name + "_seconds"] = round(time.time() - t, 1)
        print(name, {m: round(v["score"], 3) for m, v in res[name].items()}, flush=True)
    path = Path(out); path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(res, indent=1))
    print(f"wrote {path}")
