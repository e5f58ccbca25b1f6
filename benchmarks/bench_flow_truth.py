"""Flow and landmarks against the exact truth: the teachers of the real-data recipe (TV-L1 flow, dlib landmarks) and
the shipped MOL, on synthetic clips of the subject the shipped model never saw.

Usage: python benchmarks/bench_flow_truth.py [--pretrained synthetic-small] [--seed 1] [--out benchmarks/flow_truth.json]

On real data MOL's flow head learns from OpenCV's TV-L1 (7 consecutive pairs per clip) and its landmark head from
dlib; on synthetic clips both truths are exact. For every clip of `held_out_corpus(card, seed)` this measures, on
the pixels inside the face (the convex hull of the exact landmarks of the pair's first frame):
  - TV-L1 (PyTorch, OpenCV's DualTVL1 defaults) against the exact flow: the teacher's error;
  - MOL's predicted flow against the exact flow and against TV-L1;
  - zero flow against the exact flow (the error of predicting no motion, for scale);
mean end-point error (px) and the fractions of face pixels under 0.05, 0.1, 0.5 and 1 px, pooled and per pair index; and for
landmarks (frames 1..7, outer-eye-corner NME): dlib (its own detector, upsampling 2) and MOL against the exact
points, and MOL against dlib. The shipped model was trained on the exact flow and landmarks of other subjects, so it
is a student of the truth here, not of the teachers; a MOL trained on the teachers' labels is the next experiment.
"""
import argparse
import json
import os
import platform
import sys
import time

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from mol_edu.core import atomic_write_text, environment_info
from mol_edu.faces import detect_face, landmark_nme, predict_landmarks
from mol_edu.pretrained import held_out_corpus, load_pretrained
from mol_edu.train import mol_inputs
from mol_edu.tvl1 import tvl1_flow_torch


THRESHOLDS = (0.05, 0.1, 0.5, 1)   # px: optical-flow benchmarks' 0.5 and 1, and two that resolve micro-expression motion


def face_masks(landmarks: np.ndarray, H: int, W: int) -> np.ndarray:
    "(N, H, W) bool: the convex hull of each set of 68 points."
    out = np.zeros((len(landmarks), H, W), np.uint8)
    for m, pts in zip(out, landmarks):
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    return out.astype(bool)


def flow_stats(err: np.ndarray, mask: np.ndarray) -> dict:
    "Mean EPE and fractions under 0.5 / 1 px of (N, P, H, W) end-point errors inside (N, P, H, W) masks, pooled and per pair."
    pooled = err[mask]
    per_pair = [float(err[:, k][mask[:, k]].mean()) for k in range(err.shape[1])]
    return {"epe": float(pooled.mean()), **{f"under_{t}px": float((pooled < t).mean()) for t in THRESHOLDS},
            "epe_per_pair": per_pair}


def main(argv=None):
    p = argparse.ArgumentParser(description="Teachers (TV-L1, dlib) and the shipped MOL against the exact truth.")
    p.add_argument("--pretrained", default="synthetic-small", help="a shipped model")
    p.add_argument("--seed", type=int, default=1, help="data seed of the fresh held-out videos")
    p.add_argument("--out", default="benchmarks/flow_truth.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()
    model, card = load_pretrained(a.pretrained, "cpu")
    ds = held_out_corpus(card, seed=a.seed)
    errs = {k: [] for k in ("tvl1_vs_truth", "mol_vs_truth", "mol_vs_tvl1", "zero_vs_truth")}
    masks, nme = [], {"dlib_vs_truth": [], "mol_vs_truth": [], "mol_vs_dlib": []}
    missed = 0
    for batch in DataLoader(ds, batch_size=16):
        clip, truth, lm = batch["clip"][:, 0], batch["flow"].numpy(), batch["landmarks"].numpy()   # (B, T, H, W)
        B, T, H, W = clip.shape
        with torch.no_grad():
            out = model(mol_inputs(batch))
            tv = tvl1_flow_torch(clip[:, :-1].reshape(-1, H, W), clip[:, 1:].reshape(-1, H, W)).view(B, T - 1, 2, H, W).numpy()
        mol = out.flow.float().numpy()
        epe = lambda f, g: np.hypot(*np.moveaxis(f - g, 2, 0))                                   # (B, P, H, W)
        errs["tvl1_vs_truth"].append(epe(tv, truth)); errs["mol_vs_truth"].append(epe(mol, truth))
        errs["mol_vs_tvl1"].append(epe(mol, tv)); errs["zero_vs_truth"].append(epe(0 * truth, truth))
        masks.append(face_masks(lm[:, :-1].reshape(-1, 68, 2), H, W).reshape(B, T - 1, H, W))
        frames = (clip.numpy() * 255).round().astype(np.uint8)
        mol_lm = out.landmarks.float().numpy()                                                  # (B, P, 68, 2): frames 1..T-1
        for b in range(B):
            for k in range(1, T):
                box = detect_face(frames[b, k], 2)
                if box is None: missed += 1; continue
                d = predict_landmarks(frames[b, k], box)
                nme["dlib_vs_truth"].append(float(landmark_nme(d, lm[b, k], "outer_corners")))
                nme["mol_vs_dlib"].append(float(landmark_nme(mol_lm[b, k - 1], d, "outer_corners")))
            nme["mol_vs_truth"] += [float(v) for v in landmark_nme(mol_lm[b], lm[b, 1:], "outer_corners")]
    mask = np.concatenate(masks)
    flow = {k: flow_stats(np.concatenate(v), mask) for k, v in errs.items()}
    lms = {k: {"nme_outer_corners": float(np.mean(v)), "n": len(v)} for k, v in nme.items()}
    result = {"command": "python benchmarks/bench_flow_truth.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": a.pretrained, "weights_sha256": card.weights_sha256, "held_out_subjects": card.held_out_subjects,
              "clips": len(ds), "pairs": int(mask.shape[0] * mask.shape[1]), "face_pixels": int(mask.sum()),
              "flow": flow, "landmarks": lms, "dlib_missed_frames": missed,
              "machine": {**environment_info("cpu"), "logical_cpus": os.cpu_count(), "machine": platform.machine(),
                          "load_average_before": load0, "load_average_after": os.getloadavg()},
              "seconds": time.time() - t0}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}: " + ", ".join(f"{k} EPE {v['epe']:.3f} px" for k, v in flow.items()) + "; "
          + ", ".join(f"{k} NME {v['nme_outer_corners']:.4f}" for k, v in lms.items()) + f"; dlib missed {missed}")


if __name__ == "__main__":
    main()
