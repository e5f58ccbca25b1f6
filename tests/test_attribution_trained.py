"""Measured, not just pictured: a MOL trained with the project's own command looks at the moving regions more than
the same architecture untrained does (pointing-game score of Integrated Gradients and occlusion on held-out synthetic clips).

The slow test trains a model by the demo's own recipe (`mol-train` defaults, one test fold): about two minutes on a
2-core CPU, so it is marked slow (`make test-slow`); a model trained for a few seconds is not reliably better than
chance, and a test that passes by luck would prove nothing. The fast test uses the model mol_edu ships instead (trained
by the same command, see tests/test_pretrained.py, which checks *where* it points) and checks *when* it looks: the frame
pairs whose whole-pair occlusion costs its true class most are the pairs in which the moved regions move most."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def _motion_following(model, clips) -> float:
    "Mean over clips of the correlation, across frame pairs, of pair-occlusion mass and the moved regions' own motion."
    from mol_edu.attribution import attribute, moved_mask, moved_regions_of_synthetic, region_masks
    from mol_edu.widgets import model_input
    rs = []
    for c in clips:
        union = moved_mask(region_masks(c.landmarks[0], c.frames.shape[-2:]), moved_regions_of_synthetic(c))
        f = c.flow - np.median(c.flow, axis=(2, 3), keepdims=True)           # the head's translation removed
        motion = np.hypot(f[:, 0], f[:, 1])[:, union].mean(1)                  # (P,) how much the moved regions move
        a = attribute(model, model_input(c.frames / 255.0), target=int(c.label), method="pair_occlusion", over="pairs")
        rs.append(np.corrcoef(motion, a.magnitude.sum((1, 2)))[0, 1])
    return float(np.mean(rs))


@pytest.mark.parametrize("seed", [1, 2])
def test_shipped_model_looks_when_the_face_moves(seed):
    from mol_edu.attribution import held_out_clips, trained_and_untrained
    models, card = trained_and_untrained("synthetic-small")
    clips = held_out_clips(card, seed=seed)                                   # one clip per class, the unseen subject
    t, u = _motion_following(models["trained"], clips), _motion_following(models["untrained"], clips)
    assert t > 0.1 and t > u + 0.1, (t, u)

@pytest.mark.slow
def test_trained_model_points_at_moving_regions_more_than_untrained(tmp_path):
    from mol_edu.attribution import pointing_benchmark, pointing_clips
    from mol_edu.cli import build_model, load_checkpoint_model
    from mol_edu.core import seed_everything
    exe = Path(sys.executable).parent / "mol-train"
    if not exe.exists(): pytest.skip("the mol-train console script is not installed (pip install -e .)")
    cmd = [str(exe), "--name", "pointing", "--folds", "1", "--quiet", "--device", "cpu", "--runs", str(tmp_path)]
    subprocess.run(cmd, check=True, timeout=3600)
    folds = sorted((tmp_path / "pointing" / "folds").iterdir())
    assert folds, "mol-train wrote no fold checkpoint"
    trained, spec, _ = load_checkpoint_model(folds[0], "cpu")
    seed_everything(0)
    untrained = build_model(spec).eval()
    clips = pointing_clips(folds[0].name, videos=1, size=trained.cfg.image_size)
    kw = dict(methods=("integrated_gradients", "occlusion"), n_steps=8, patch=8, stride=8)
    t, u = pointing_benchmark(trained, clips, **kw), pointing_benchmark(untrained, clips, **kw)
    for m in kw["methods"]:
        assert t[m]["score"] > u[m]["score"], (m, t[m], u[m])
