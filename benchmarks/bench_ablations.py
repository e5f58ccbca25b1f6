"""Ablations with power: MOL against itself without FCC, without CCC, without the flow or the landmark loss, with the
released CCC reading and with the released expression head, trained on the same subjects and tested on the same
360 fresh videos of 6 subjects none of them saw, over several training seeds.

Usage: python benchmarks/bench_ablations.py [--seeds 2024 2025 2026] [--iterations 500] [--held_out 6]
                                            [--variants full "no FCC" ...] [--out benchmarks/ablations.json] [--threads 1]
                                            [--scheme sides --train_videos_per_class 6 --out benchmarks/ablations_sides.json]
                                            [--amplitude 0.25 --variants full ... --out benchmarks/ablations_amp0.25.json]

Two processes can share a 2-core machine (one thread each) running different --variants into different --out
files; `--merge` then adds one file's runs to the other's. The baselines of chapters 28a/28b ("3D CNN (baseline)", "STSTNet (baseline, apex from the exact flow)") can be named
in --variants too: they train with the same recipe on the same clips, with their own loss and input function.

Protocol (a held-out split, not LOSO, to buy test videos with training runs): the demo corpus (24 subjects, 4 videos
per class, corpus seed 0, 64x64); `fold_subjects(subjects, held_out, 0)` picks the test subjects; every variant
trains once per seed with the `Trainer` and the demo's `cpu` recipe on the clips of the other subjects; the test set
is fresh videos of the test subjects (data seed 1, 12 per class and subject: 360 videos), identical for every run.
Each run's per-video predictions are written into the results file as soon as it finishes, and a rerun skips the
runs the file already holds (delete it, or use another --out, to start afresh), so the protocol can be extended
seed by seed across sessions. Comparisons are chapter 29a's `compare` of the full model against each variant on the
same videos: paired bootstrap over the test subjects, a permutation test over them, McNemar's test per seed.
`--amplitude F` scales the action units' amplitude range of training *and* test videos by F (chapter 29d's factors):
a model trained at each level, where bench_amplitude.py shifts the test videos of one model trained at F = 1.
"""
import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mol_edu.ablations import ablate
from mol_edu.cli import ARCHS, DEMO, InMemoryClips, build_model, load_dataset, model_spec
from mol_edu.core import atomic_write_text, seed_everything
from mol_edu.loso import fold_subjects, pool_by_video
from mol_edu.loss import LossWeights
from mol_edu.model import MOL, MOLConfig
from mol_edu.stats import acc_of, bootstrap_metric, compare, subject_confusions, uf1_of
from mol_edu.synthetic import SynthConfig, SyntheticMicroExpressions
from mol_edu.train import TrainConfig, Trainer, mol_inputs, predict
from machine import machine

VARIANTS = {   # name -> (part removed, TrainConfig overrides, MOLConfig overrides on top of the demo's)
    "full": ("none", {}, {}),
    "no FCC": ("fcc", {}, {}),
    "no CCC": ("ccc", {}, {}),
    "no flow loss": ("none", {"loss_weights": LossWeights(flow=0.0)}, {}),
    "no landmark loss": ("none", {"loss_weights": LossWeights(ldm=0.0)}, {}),
    "released CCC reading": ("none", {}, {"ccc_reading": "released"}),
    "released head": ("none", {}, {"mer_norm": "none"}),
}
BASELINES = {  # name -> (arch, config overrides): trained and tested the same way, with their own loss and inputs
    "3D CNN (baseline)": ("cnn3d", {}),
    "STSTNet (baseline, apex from the exact flow)": ("ststnet", {"apex": "oracle"}),
}


def train_baseline(name: str, train_ds, classes: int, iterations: int, seed: int) -> tuple:
    "(model in eval mode, its input function) of a baseline trained with the same recipe."
    arch, over = BASELINES[name]
    spec = model_spec(arch, classes, **over)
    seed_everything(seed)
    model = build_model(spec)                                 # (imports the baseline's module, which registers it)
    a = ARCHS[spec["arch"]]
    inputs = (a.inputs(spec["config"]) if a.inputs else None) or mol_inputs
    trainer = Trainer(model, train_ds, TrainConfig.preset(DEMO["preset"], iterations=iterations, seed=seed), device="cpu",
                      loss_fn=a.loss, input_fn=inputs)
    trainer.fit()
    return trainer.model.eval(), inputs


def train_variant(name: str, train_ds, classes: int, iterations: int, seed: int):
    "(model in eval mode, its input function): MOL with variant `name`, or a baseline."
    if name in BASELINES: return train_baseline(name, train_ds, classes, iterations, seed)
    part, loss_over, model_over = VARIANTS[name]
    mcfg = MOLConfig.preset(DEMO["arch"], classes=classes, **{**DEMO["model_overrides"], **model_over})
    cfg = TrainConfig.preset(DEMO["preset"], iterations=iterations, seed=seed, **loss_over)
    seed_everything(seed)                                     # as run_loso seeds each fold before its model
    trainer = Trainer(ablate(MOL(mcfg), part), train_ds, cfg, device="cpu")
    trainer.fit()
    return trainer.model.eval(), mol_inputs


def main(argv=None):
    p = argparse.ArgumentParser(description="MOL's ablations on 360 fresh held-out videos, several seeds.")
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025, 2026])
    p.add_argument("--iterations", type=int, default=500, help="training iterations (the demo's)")
    p.add_argument("--held_out", type=int, default=6, help="test subjects")
    p.add_argument("--videos_per_class", type=int, default=12, help="fresh test videos per class and test subject")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=[*VARIANTS, *BASELINES])
    p.add_argument("--out", default="benchmarks/ablations.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scheme", default="casme2", help="class scheme of the synthetic corpus, e.g. 'sides' (chapter 10b: "
                   "classes told apart only by the relation of distant regions)")
    p.add_argument("--train_videos_per_class", type=int, default=DEMO["videos_per_class"],
                   help="training videos per class and subject (the demo's 4)")
    p.add_argument("--amplitude", type=float, default=1.0, help="factor on the corpus's AU amplitude range, for "
                   "training and test videos alike (1 = the demo's)")
    p.add_argument("--merge", nargs="+", default=[], help="results files of the same protocol (e.g. written by a second "
                   "process running other variants side by side): their runs are added before any training")
    a = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(a.threads)
    t_start, load0, out = time.time(), os.getloadavg(), Path(a.out)
    if not a.amplitude > 0: raise SystemExit(f"bench_ablations: --amplitude: expected a positive factor, got {a.amplitude}")
    lo, hi = SynthConfig().amplitude
    amp = {"amplitude": (lo * a.amplitude, hi * a.amplitude)} if a.amplitude != 1 else {}
    if a.scheme == "casme2" and a.train_videos_per_class == DEMO["videos_per_class"] and not amp:
        ds, info = load_dataset("synthetic", 64, DEMO["subjects"], DEMO["videos_per_class"], 0)   # the demo's corpus
    else:
        syn = SyntheticMicroExpressions(subjects=DEMO["subjects"], videos_per_class=a.train_videos_per_class, seed=0,
                                        size=64, scheme=a.scheme, **amp)
        ds, info = InMemoryClips(syn), {"repr": repr(syn)}
    held = fold_subjects(ds.subjects, a.held_out, 0)
    keep = [i for i, s in enumerate(ds.clip_subjects) if s not in held]
    train_ds = torch.utils.data.Subset(ds, keep)
    test = InMemoryClips(SyntheticMicroExpressions(subjects=DEMO["subjects"], videos_per_class=a.videos_per_class,
                                                   seed=1, size=64, scheme=a.scheme, **amp).subset(held))
    protocol = {"corpus": info["repr"], "held_out": held, "test_videos_per_class": a.videos_per_class,
                "test_data_seed": 1, "iterations": a.iterations, "recipe": DEMO["preset"],
                **({"scheme": a.scheme} if a.scheme != "casme2" else {}),
                **({"amplitude_factor": a.amplitude} if amp else {})}
    old = json.loads(out.read_text()) if out.exists() else None
    if old is not None and old["protocol"] != protocol:
        raise SystemExit(f"bench_ablations: {out} holds runs of another protocol; use another --out")
    runs = old["runs"] if old else []
    for f in a.merge:                                         # runs made elsewhere under the same protocol
        other = json.loads(Path(f).read_text())
        if other["protocol"] != protocol: raise SystemExit(f"bench_ablations: {f} holds runs of another protocol")
        runs += [r for r in other["runs"] if not any(q["variant"] == r["variant"] and q["seed"] == r["seed"] for q in runs)]
    for seed in a.seeds:                                      # every variant of a seed before the next seed
        for name in a.variants:
            if any(r["variant"] == name and r["seed"] == seed for r in runs): continue
            t0 = time.time()
            model, inputs = train_variant(name, train_ds, len(ds.classes), a.iterations, seed)
            pr = predict(model, test, "cpu", input_fn=inputs)
            vp, vl, vk = pool_by_video(pr["probs"], pr["labels"], pr["videos"], pr["subjects"])
            runs.append({"variant": name, "seed": seed, "seconds": time.time() - t0, "videos": vk,
                         "labels": vl.tolist(), "preds": vp.argmax(1).tolist()})
            save(out, protocol, runs, a, argv, load0, t_start, len(ds.classes))
            print(f"{name} seed {seed}: ACC {np.mean(vp.argmax(1) == vl):.3f} ({time.time() - t0:.0f} s)", flush=True)
    save(out, protocol, runs, a, argv, load0, t_start, len(ds.classes))
    print(f"wrote {out}")


def save(out: Path, protocol: dict, runs: list, a, argv, load0, t_start, K: int):
    "Write every finished run and the comparisons of the seeds that every variant has finished."
    first = runs[0]
    keys, labels = first["videos"], np.array(first["labels"])
    subjects = [k.split("/")[0] for k in keys]
    seeds = sorted({r["seed"] for r in runs if all(any(q["variant"] == v and q["seed"] == r["seed"] for q in runs)
                                                   for v in a.variants)})
    preds = {v: np.array([next(r["preds"] for r in runs if r["variant"] == v and r["seed"] == s) for s in seeds])
             for v in a.variants} if seeds else {}
    for r in runs:
        if r["videos"] != keys: raise ValueError(f"run {r['variant']} seed {r['seed']}: other test videos than the first run")
    comparisons = [{"a": "full", "b": v, **compare(labels, preds["full"], preds[v], subjects, K)}
                   for v in a.variants if v != "full"] if seeds and "full" in preds else []
    scores = {}
    for v, pv in preds.items():                               # each variant's scores over seeds, 95 % interval over subjects
        cms, _ = subject_confusions(labels, pv, subjects, K)
        scores[v] = {}
        for m, metric in (("uf1", uf1_of), ("acc", acc_of)):
            lo, hi = np.percentile(bootstrap_metric(cms, 2000, 0, metric), [2.5, 97.5])
            scores[v][m] = {"mean": float(metric(cms.sum(1)).mean()), "low": float(lo), "high": float(hi),
                            "per_seed": [float(x) for x in metric(cms.sum(1))]}
    result = {"command": shlex.join(["python", "benchmarks/bench_ablations.py", *argv]), "protocol": protocol,
              "variants": {v: {"removed": VARIANTS[v][0], "train": {k: str(x) for k, x in VARIANTS[v][1].items()},
                               "model": VARIANTS[v][2]} if v in VARIANTS else {"baseline": BASELINES[v][0],
                               "config": BASELINES[v][1]} for v in a.variants},
              "complete_seeds": seeds, "scores": scores, "comparisons": comparisons, "runs": runs,
              "machine": machine(load0, end_key="load_average_now"),
              "seconds_this_process": time.time() - t_start}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
