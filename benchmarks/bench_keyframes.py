"""Key-frame robustness: STSTNet with a shifted, midpoint or middle-frame apex against MOL, which reads none.

Usage: python benchmarks/bench_keyframes.py [--seeds 2024 2025 2026] [--folds 0] [--iterations 500]
                                            [--mol_runs runs/claims/mol-2024 ...] [--work runs/keyframes]
                                            [--out benchmarks/keyframes.json] [--threads 1]

On the demo corpus (mol-train's defaults: 24 subjects, 4 videos per class, corpus seed 0, 64x64 clips), chapter 29b's
cache holds STSTNet's TV-L1 maps for every (clip, apex frame). For each training seed and LOSO fold, STSTNet is trained
with the `Trainer` and the `cpu` recipe on the correct sheet apex, on the midpoint of onset and offset, and on the
clip's middle frame; the sheet-trained model is also tested with sheets shifted by whole video frames. MOL's per-video
predictions are read from `mol-train` runs (`--mol_runs`, e.g. `mol-train --folds 0 --seed 2024 --runs runs/claims
--name mol-2024`). Comparisons are chapter 29a's `compare` on the same test videos. Every finished (seed, training
rule, fold) is appended to <work>/folds.jsonl, so a rerun resumes; the maps are cached in <work>/maps.npz.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from mol_edu.cli import DEMO
from mol_edu.core import atomic_write_text, seed_everything
from mol_edu.keyframes import CachedMapsSTSTNet, KeyFrameMaps, apex_maps, keyframe_inputs, sheet_apex
from mol_edu.loso import fold_subjects, pool_by_video
from mol_edu.stats import bootstrap_metric, compare, subject_confusions, uf1_of, acc_of
from mol_edu.ststnet import STSTNetConfig, classification_terms
from mol_edu.synthetic import SyntheticMicroExpressions
from mol_edu.train import Trainer, TrainConfig, predict
from machine import machine

SHIFTS = (-8, -4, -2, -1, 0, 1, 2, 4, 8)   # video frames added to the sheet's apex at test time
TRAIN_RULES = ("sheet", "midpoint", "middle")


def maps_key(corpus) -> str:
    "What the cached maps depend on: the corpus (subjects, videos, seed, generator settings) and STSTNet's map settings."
    return json.dumps({"subjects": corpus.subjects, "videos_per_class": corpus.videos_per_class, "seed": corpus.seed,
                       "synth": repr(corpus.cfg), "ststnet": repr(STSTNetConfig())}, sort_keys=True)


def load_or_make_maps(corpus, path: Path) -> dict:
    "The cached maps table (np.load without pickle), computed and written atomically when absent or made for other data."
    key = maps_key(corpus)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            t = {k: z[k] for k in z.files}
        if "key" in t and str(t["key"]) == key:
            t["subjects"], t["videos"] = [str(s) for s in t["subjects"]], [str(v) for v in t["videos"]]
            return t
        print(f"bench_keyframes: {path} was made for another corpus or other map settings: recomputing")
    t = apex_maps(corpus, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, maps=t["maps"], oracle=t["oracle"], labels=t["labels"], subjects=np.array(t["subjects"]),
             videos=np.array(t["videos"]), key=np.array(key))
    os.replace(tmp, path)
    return t


def test_rules(corpus, table) -> dict:
    "Every test annotation: name -> (N,) clip frames."
    rules = {f"sheet{k:+d}": sheet_apex(corpus, "sheet", k) for k in SHIFTS}
    rules.update(midpoint=sheet_apex(corpus, "midpoint"), middle=sheet_apex(corpus, "middle"),
                 oracle=np.asarray(table["oracle"], np.int64))
    return rules


def run_fold(table, classes, rules, train_rule, subject, seed, iterations) -> dict:
    "Train STSTNet on every subject but `subject` with one annotation; per-clip test probabilities per test rule."
    subs = np.array(table["subjects"])
    train_idx, test_idx = np.flatnonzero(subs != subject), np.flatnonzero(subs == subject)
    data = KeyFrameMaps(table, rules["sheet+0" if train_rule == "sheet" else train_rule], classes)
    cfg = TrainConfig.preset("cpu", seed=seed, iterations=iterations)
    seed_everything(seed)
    model = CachedMapsSTSTNet(STSTNetConfig(classes=len(classes)))
    t0 = time.time()
    trainer = Trainer(model, Subset(data, train_idx), cfg, device="cpu", loss_fn=classification_terms,
                      input_fn=keyframe_inputs).fit()
    tests = [f"sheet{k:+d}" for k in SHIFTS] + ["midpoint", "middle", "oracle"] if train_rule == "sheet" else [train_rule]
    probs = {name: predict(trainer.model, Subset(data.with_apex(rules[name]), test_idx), "cpu",
                           input_fn=keyframe_inputs)["probs"].tolist() for name in tests}
    return {"seed": seed, "train": train_rule, "subject": subject, "iterations": iterations, "clips": test_idx.tolist(),
            "probs": probs, "seconds": time.time() - t0}


def video_predictions(table, records, name) -> tuple:
    "(video keys, labels, subjects, (R, V) predicted classes) of condition `name`, one row per seed, videos aligned."
    seeds = sorted({r["seed"] for r in records})
    rows, keys = [], None
    for seed in seeds:
        idx, probs = [], []
        for r in sorted((r for r in records if r["seed"] == seed), key=lambda r: r["subject"]):
            idx += r["clips"]; probs += r["probs"][name]
        subs = [table["subjects"][i] for i in idx]
        vp, vl, vk = pool_by_video(np.array(probs), table["labels"][idx], [table["videos"][i] for i in idx], subs)
        order = np.argsort(vk)
        if keys is None: keys, labels = [vk[i] for i in order], vl[order]
        elif [vk[i] for i in order] != keys: raise ValueError(f"{name}: seed {seed} scored other videos")
        rows.append(vp.argmax(1)[order])
    return keys, labels, [k.split("/")[0] for k in keys], np.stack(rows)


def mol_video_predictions(run_dirs) -> tuple:
    "(video keys, labels, (R, V) predictions) from mol-train runs' fold reports, videos aligned across runs."
    rows, keys, labels = [], None, None
    for d in run_dirs:
        probs, lab, vids, subs = [], [], [], []
        for f in sorted(Path(d).glob("folds/*/fold.json")):
            p = json.loads(f.read_text())["predictions"]["fixed"]
            probs += p["probs"]; lab += p["labels"]; vids += p["videos"]; subs += p["subjects"]
        if not probs: raise ValueError(f"{d}: no folds/*/fold.json with predictions")
        vp, vl, vk = pool_by_video(np.array(probs), np.array(lab), vids, subs)
        order = np.argsort(vk)
        k = [vk[i] for i in order]
        if keys is not None and k != keys: raise ValueError(f"{d}: other test videos than {run_dirs[0]}")
        keys, labels = k, vl[order]
        rows.append(vp.argmax(1)[order])
    return keys, labels, np.stack(rows)


def mol_run_info(run_dirs) -> list:
    "What each mol-train run was: its command, training seed, wall time and the machine it ran on (from its reports)."
    out = []
    for d in run_dirs:
        config, summary = (json.loads((Path(d) / f).read_text()) for f in ("config.json", "summary.json"))
        env = config.get("environment", {})
        out.append({"run": str(d), "command": config["command"], "seed": config["train"]["seed"],
                    "seconds": summary.get("seconds"), "threads": env.get("threads"), "cpu": env.get("cpu"),
                    "git_commit": env.get("git_commit")})
    return out


def summarise(labels, subjects, preds, K, n=2000) -> dict:
    "Scores over seeds with 95 % intervals over subjects (bootstrap), per-seed UF1."
    cms, _ = subject_confusions(labels, preds, subjects, K)
    out = {}
    for name, metric in (("uf1", uf1_of), ("acc", acc_of)):
        lo, hi = np.percentile(bootstrap_metric(cms, n, 0, metric), [2.5, 97.5])
        out[name] = {"mean": float(metric(cms.sum(1)).mean()), "low": float(lo), "high": float(hi)}
    out["uf1_per_seed"] = [float(u) for u in uf1_of(cms.sum(1))]
    return out


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Key-frame robustness of STSTNet against MOL on the demo corpus.")
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025, 2026], help="training seeds")
    p.add_argument("--folds", type=int, default=0, help="0 = every subject; n = mol-train's seeded subset of n subjects")
    p.add_argument("--iterations", type=int, default=500, help="STSTNet's training iterations (the demo's cpu recipe)")
    p.add_argument("--mol_runs", nargs="+", default=[], help="mol-train run folders with fold reports")
    p.add_argument("--work", default="runs/keyframes", help="maps cache and per-fold records (resumable)")
    p.add_argument("--out", default="benchmarks/keyframes.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    a = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    seeds, folds, iterations, mol_runs, work, out, threads = a.seeds, a.folds, a.iterations, a.mol_runs, a.work, a.out, a.threads
    torch.set_num_threads(threads)
    t_start, load0 = time.time(), os.getloadavg()
    corpus = SyntheticMicroExpressions(subjects=DEMO["subjects"], videos_per_class=DEMO["videos_per_class"], seed=0, size=64)
    work = Path(work)
    t0 = time.time(); table = load_or_make_maps(corpus, work / "maps.npz"); maps_s = time.time() - t0
    rules, classes = test_rules(corpus, table), list(corpus.classes)
    subjects = fold_subjects(corpus.subjects, folds or None, 0)
    log = work / "folds.jsonl"
    records = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    if records and any(r.get("iterations", iterations) != iterations for r in records):
        raise SystemExit(f"bench_keyframes: {log} holds folds trained for another --iterations; use another --work")
    done = {(r["seed"], r["train"], r["subject"]) for r in records}
    todo = [(s, tr, sub) for s in seeds for tr in TRAIN_RULES for sub in subjects if (s, tr, sub) not in done]
    from tqdm.auto import tqdm
    for s, tr, sub in tqdm(todo, desc="STSTNet folds"):
        rec = run_fold(table, classes, rules, tr, sub, s, iterations)
        with open(log, "a") as f: f.write(json.dumps(rec) + "\n")
        records.append(rec)
    records = [r for r in records if r["seed"] in seeds and r["subject"] in subjects]
    K = len(classes)
    conditions, preds = {}, {}
    names = [("sheet", f"sheet{k:+d}") for k in SHIFTS] + [("sheet", n) for n in ("midpoint", "middle", "oracle")] + \
            [("midpoint", "midpoint"), ("middle", "middle")]
    for train, test in names:
        key = f"train {train}, test {test}"
        keys, labels, vsubs, p = video_predictions(table, [r for r in records if r["train"] == train], test)
        preds[key] = p
        conditions[key] = summarise(labels, vsubs, p, K)
    base = "train sheet, test sheet+0"
    comparisons = [{"a": base, "b": k, **compare(labels, preds[base], preds[k], vsubs, K)} for k in preds if k != base]
    mol = None
    if mol_runs:
        mkeys, mlabels, mpreds = mol_video_predictions(mol_runs)
        where = {k: i for i, k in enumerate(keys)}
        if not set(mkeys) <= set(where): raise ValueError("mol_runs: videos that the STSTNet folds did not test")
        sel = np.array([where[k] for k in mkeys])
        msubs = [k.split("/")[0] for k in mkeys]
        mol = {"runs": mol_runs, "videos": len(mkeys), "subjects": sorted(set(msubs)), "run_info": mol_run_info(mol_runs),
               "scores": summarise(mlabels, msubs, mpreds, K),
               "comparisons": [{"a": "MOL", "b": k, **compare(mlabels, mpreds, preds[k][:, sel], msubs, K)}
                               for k in (base, "train midpoint, test midpoint", "train middle, test middle",
                                         "train sheet, test oracle", "train sheet, test sheet-8", "train sheet, test sheet+8")],
               "video_keys": mkeys, "predictions": mpreds.tolist()}   # (seeds, videos): one row per run, as --mol_runs
    moved = {k: {"clips_moved": float(np.mean(rules[f"sheet{k:+d}"] != rules["sheet+0"])),
                 "mean_clip_frames": float(np.abs(rules[f"sheet{k:+d}"] - rules["sheet+0"]).mean())} for k in SHIFTS}
    result = {"command": "python benchmarks/bench_keyframes.py " + " ".join(argv),
              "machine": machine(load0),
              "clips": len(corpus), "videos": len(keys), "folds": subjects, "seeds": seeds, "iterations": iterations,
              "shifts": list(SHIFTS), "apex_moves": moved, "conditions": conditions, "comparisons": comparisons,
              "mol": mol, "video_keys": keys, "labels": labels.tolist(),
              "predictions": {k: v.tolist() for k, v in preds.items()},
              "seconds": {"maps": maps_s, "folds": sum(r["seconds"] for r in records), "wall": time.time() - t_start}}
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}: " + ", ".join(f"{k}: UF1 {v['uf1']['mean']:.3f} [{v['uf1']['low']:.3f}, {v['uf1']['high']:.3f}]"
                                     for k, v in conditions.items()))


if __name__ == "__main__":
    main()
