"""Student and teachers: MOL trained on TV-L1 flow and dlib landmarks (as on real data) against MOL trained on the
exact truth, both measured against the exact truth of fresh videos of a subject neither saw.

Usage: python benchmarks/bench_student.py [--seeds 2024 2025 2026] [--iterations 2000] [--targets exact teachers]
                                          [--work runs/student] [--out benchmarks/student.json] [--threads 1]

On real data MOL never sees the true motion: its flow head learns from OpenCV's TV-L1 between consecutive clip
frames and its landmark head from dlib. Here the demo corpus (mol-train's defaults: 24 subjects, 4 videos per class,
corpus seed 0, 64x64 clips) is labelled twice: with the exact flow and landmarks the renderer knows ("exact"), and
with the teachers' estimates ("teachers": TV-L1 in PyTorch with OpenCV's DualTVL1 defaults on the 7 consecutive pairs
of every clip, dlib's 68 points on every frame, upsampling 2). For each target kind and seed, the demo MOL is trained
with the `Trainer` and the `cpu` recipe on every subject but the shipped model's held-out one (sub19), exactly as
`mol-train --folds 1` trains it; then `mol_edu.truth.truth_scores` (chapter 29c) scores it on fresh videos of sub19 (data seed 1):
flow EPE on the face against the exact flow and against TV-L1, outer-corner NME against the exact points and against
dlib, and per-video UF1. The teachers' labels are cached in <work>/teachers.npz (keyed on the corpus), and every
finished (targets, seed) is appended to <work>/runs.jsonl, so a rerun resumes.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mol_edu.cli import DEMO, build_model, input_size, load_dataset, model_spec
from mol_edu.core import atomic_write_bytes, atomic_write_text, seed_everything
from mol_edu.loso import fold_subjects, split_by_subject
from mol_edu.pretrained import score_pretrained
from mol_edu.synthetic import SyntheticMicroExpressions
from mol_edu.train import TrainConfig, Trainer
from mol_edu.truth import Relabelled, teacher_labels, truth_scores
from machine import machine


def load_or_make_teachers(ds, key: str, path: Path) -> dict:
    "The teachers' labels of `ds` from `path` when it was made for the same corpus (`key`), else computed and saved."
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key: return {k: z[k] for k in ("flow", "landmarks", "missed", "seconds")}
    t0 = time.time()
    lab = teacher_labels(ds, progress=True)
    lab["seconds"] = np.array(time.time() - t0)
    path.parent.mkdir(parents=True, exist_ok=True)
    import io
    buf = io.BytesIO(); np.savez(buf, key=np.array(key), **lab)
    atomic_write_bytes(path, buf.getvalue())
    return lab


def spread(values: list) -> dict:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "per_seed": [float(v) for v in values]}


def main(argv=None):
    p = argparse.ArgumentParser(description="MOL taught by TV-L1 and dlib against MOL taught by the exact truth.")
    p.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025, 2026])
    p.add_argument("--iterations", type=int, default=2000, help="training iterations (the shipped model's)")
    p.add_argument("--targets", nargs="+", default=["exact", "teachers"], choices=["exact", "teachers"])
    p.add_argument("--work", default="runs/student", help="teachers' labels cache and per-run records (resumable)")
    p.add_argument("--out", default="benchmarks/student.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--subjects", type=int, default=DEMO["subjects"], help="corpus subjects (a smaller corpus for a quick check)")
    p.add_argument("--videos_per_class", type=int, default=DEMO["videos_per_class"])
    a = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(a.threads)
    t_start, load0, work = time.time(), os.getloadavg(), Path(a.work)
    spec = model_spec(DEMO["arch"], 5, **DEMO["model_overrides"])
    ds, info = load_dataset("synthetic", input_size(spec), a.subjects, a.videos_per_class, 0)
    held_out = fold_subjects(ds.subjects, 1, 0)[0]                   # mol-train --folds 1: the shipped model's subject
    fresh = SyntheticMicroExpressions(subjects=a.subjects, videos_per_class=a.videos_per_class, seed=1,
                                      size=input_size(spec)).subset([held_out])
    labelled = {"exact": ds}
    if "teachers" in a.targets:
        lab = load_or_make_teachers(ds, info["repr"], work / "teachers.npz")
        labelled["teachers"] = Relabelled(ds, lab["flow"], lab["landmarks"])
        print(f"teachers' labels: {len(ds)} clips, dlib missed {int(lab['missed'])} frames, {float(lab['seconds']):.0f} s")
    log = work / "runs.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if any(r["iterations"] != a.iterations for r in records):
        raise SystemExit(f"bench_student: {log} holds runs of another --iterations; use another --work")
    done = {(r["targets"], r["seed"]) for r in records}
    for seed in a.seeds:                                             # both target kinds of a seed before the next seed
        for targets in a.targets:
            if (targets, seed) in done: continue
            t0 = time.time()
            train_ds, _ = split_by_subject(labelled[targets], held_out)
            cfg = TrainConfig.preset(DEMO["preset"], iterations=a.iterations, seed=seed)
            seed_everything(seed)                                    # as mol-train seeds each fold before its model
            trainer = Trainer(build_model(spec), train_ds, cfg, device="cpu")
            trainer.fit()
            model = trainer.model.eval()
            m = truth_scores(model, fresh)
            s = score_pretrained(model, fresh, "cpu")
            rec = {"targets": targets, "seed": seed, "iterations": a.iterations, "seconds": time.time() - t0,
                   "flow": {k: v["epe"] for k, v in m["flow"].items()},
                   "flow_under": {k: {t: v[t] for t in v if t.startswith("under_")} for k, v in m["flow"].items()},
                   "landmarks": {k: v["nme_outer_corners"] for k, v in m["landmarks"].items()},
                   "uf1": s["uf1"], "acc": s["acc"], "clips": m["clips"], "pairs": m["pairs"]}
            records.append(rec)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f: f.write(json.dumps(rec) + "\n")
            print(f"{targets} seed {seed}: flow EPE {rec['flow']['mol_vs_truth']:.3f} px to the truth, "
                  f"{rec['flow']['mol_vs_tvl1']:.3f} to TV-L1; NME {rec['landmarks']['mol_vs_truth']:.4f} to the truth; "
                  f"UF1 {rec['uf1']:.3f} ({rec['seconds']:.0f} s)", flush=True)
    rows = {t: [r for r in records if r["targets"] == t and r["seed"] in a.seeds] for t in a.targets}
    summary = {t: {"flow_epe_to_truth": spread([r["flow"]["mol_vs_truth"] for r in rs]),
                   "flow_epe_to_tvl1": spread([r["flow"]["mol_vs_tvl1"] for r in rs]),
                   "nme_to_truth": spread([r["landmarks"]["mol_vs_truth"] for r in rs]),
                   "nme_to_dlib": spread([r["landmarks"]["mol_vs_dlib"] for r in rs]),
                   "uf1": spread([r["uf1"] for r in rs])} for t, rs in rows.items() if rs}
    first = records[0]
    result = {"command": "python benchmarks/bench_student.py " + " ".join(argv), "held_out_subject": held_out,
              "fresh_videos_seed": 1, "clips": first["clips"], "pairs": first["pairs"], "iterations": a.iterations,
              "seeds": a.seeds, "model": spec,
              "teachers": {"flow_epe_to_truth": first["flow"]["tvl1_vs_truth"],
                           "zero_flow_epe_to_truth": first["flow"]["zero_vs_truth"],
                           "dlib_nme_to_truth": first["landmarks"]["dlib_vs_truth"],
                           "dlib_missed_training_frames": int(lab["missed"]) if "teachers" in a.targets else None},
              "students": summary, "runs": [r for rs in rows.values() for r in rs],
              "machine": machine(load0),
              "seconds": time.time() - t_start}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
