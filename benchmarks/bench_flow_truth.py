"""Flow and landmarks against the exact truth: the teachers of the real-data recipe (TV-L1 flow, dlib landmarks) and
the shipped MOL, on synthetic clips of the subject the shipped model never saw (chapter 29c, mol_edu.truth).

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
is a student of the truth here, not of the teachers; bench_student.py trains students of the teachers.
"""
import argparse
import json
import os
import sys
import time

import torch

from mol_edu.core import atomic_write_text
from mol_edu.pretrained import held_out_corpus, load_pretrained
from mol_edu.truth import truth_scores
from machine import machine


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
    m = truth_scores(model, held_out_corpus(card, seed=a.seed))
    flow, lms, missed = m["flow"], m["landmarks"], m["dlib_missed_frames"]
    result = {"command": "python benchmarks/bench_flow_truth.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": a.pretrained, "weights_sha256": card.weights_sha256, "held_out_subjects": card.held_out_subjects,
              **m,
              "machine": machine(load0),
              "seconds": time.time() - t0}
    atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}: " + ", ".join(f"{k} EPE {v['epe']:.3f} px" for k, v in flow.items()) + "; "
          + ", ".join(f"{k} NME {v['nme_outer_corners']:.4f}" for k, v in lms.items()) + f"; dlib missed {missed}")


if __name__ == "__main__":
    main()
