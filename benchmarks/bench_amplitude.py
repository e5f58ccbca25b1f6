"""How subtle can the motion be? The shipped model's per-video UF1 on fresh videos of its held-out subject as the
action units' amplitude shrinks towards real micro-expression sizes, and as the sensor noise grows.

Usage: python benchmarks/bench_amplitude.py [--pretrained synthetic-small] [--seeds 1 2 3] [--videos_per_class 12]
                                            [--out benchmarks/amplitude.json] [--threads 1]

For each condition (the corpus's `amplitude` range scaled by a factor, or its `noise` set to a value, everything
else as the model was trained), `held_out_corpus` renders `videos_per_class` new videos per class of the held-out
subject for each data seed, and `mol_edu.difficulty.difficulty_scores` (chapter 29d) scores them: per-video UF1 and
accuracy with 95 % intervals from a bootstrap over videos, and the size of the motion (zero flow's EPE on the face)
and TV-L1's error on the first clips. The model was trained at factor 1 and noise 1.5 only: the curves measure how
a trained model copes with weaker motion or more noise, not how well a model trained at each level would do.
"""
import argparse
import json
import os
import sys
import time

import torch

from mol_edu.core import atomic_write_text
from mol_edu.pretrained import held_out_corpus, load_pretrained
from mol_edu.synthetic import SynthConfig
from mol_edu.difficulty import difficulty_scores
from machine import machine

AMPLITUDE_FACTORS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)   # times the default range (1.5, 3.0) px at 128 x 128
NOISE_LEVELS = (0.0, 1.5, 3.0, 6.0, 12.0)                      # grey levels (std); the default is 1.5


def main(argv=None):
    p = argparse.ArgumentParser(description="The shipped model's UF1 against AU amplitude and sensor noise.")
    p.add_argument("--pretrained", default="synthetic-small")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="data seeds of the fresh videos")
    p.add_argument("--videos_per_class", type=int, default=12)
    p.add_argument("--out", default="benchmarks/amplitude.json")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()
    model, card = load_pretrained(a.pretrained, "cpu")
    lo, hi = SynthConfig().amplitude
    conditions = [("amplitude", f, {"amplitude": (lo * f, hi * f)}) for f in AMPLITUDE_FACTORS]
    conditions += [("noise", n, {"noise": n}) for n in NOISE_LEVELS]
    rows = []
    for kind, value, over in conditions:
        sets = [held_out_corpus(card, seed=s, videos_per_class=a.videos_per_class, **over) for s in a.seeds]
        r = difficulty_scores(model, sets)
        rows.append({"kind": kind, "value": value, "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in over.items()}, **r})
        print(f"{kind} {value}: UF1 {r['uf1']['mean']:.3f} [{r['uf1']['low']:.3f}, {r['uf1']['high']:.3f}], motion "
              f"{r['motion_px']:.3f} px, TV-L1 error {r['tvl1_epe']:.3f} px ({r['videos']} videos)", flush=True)
    result = {"command": "python benchmarks/bench_amplitude.py " + " ".join(argv), "model": a.pretrained,
              "weights_sha256": card.weights_sha256, "held_out_subjects": card.held_out_subjects,
              "trained_at": {"amplitude": list(SynthConfig().amplitude), "noise": SynthConfig().noise},
              "seeds": a.seeds, "videos_per_class": a.videos_per_class, "rows": rows,
              "machine": machine(load0),
              "seconds": time.time() - t0}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
