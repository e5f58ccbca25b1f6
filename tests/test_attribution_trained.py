"""Measured, not just pictured: a MOL trained with the project's own command looks at the moving regions more than
the same architecture untrained does (pointing-game score of Integrated Gradients and occlusion on held-out synthetic clips).

The model is trained by the demo's own recipe (`mol-train` defaults, one test fold): about two minutes on a 2-core
CPU, so this test is marked slow (`make test-slow`). There is no fast variant: a model
trained for a few seconds is not reliably better than chance, and a test that passes by luck would prove nothing."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
