"""Tests of mol_edu.loso: scores vs scikit-learn, video pooling, subject splits, fold bookkeeping, reports."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from mol_edu.loso import (LOSOConfig, confusion_matrix, fold_subjects, format_summary, pool_by_video, run_loso,
                          scores_from_confusion, split_by_subject, write_report)
from mol_edu.train import TinyJointNet, ToyMotionClips, TrainConfig

torch.set_num_threads(2)


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    K = 5
    y = rng.integers(0, K, 200); p = np.where(rng.random(200) < 0.5, y, rng.integers(0, K, 200))
    cm = confusion_matrix(y, p, K)
    assert (cm == sk_confusion(y, p, labels=range(K))).all()
    s = scores_from_confusion(cm)
    assert np.isclose(s["acc"], accuracy_score(y, p))
    assert np.isclose(s["uar"], recall_score(y, p, average="macro"))
    assert np.isclose(s["uar"], balanced_accuracy_score(y, p))
    assert np.isclose(s["uf1"], f1_score(y, p, average="macro", labels=range(K), zero_division=0))
    assert np.isclose(s["wf1"], f1_score(y, p, average="weighted"))


def test_summed_confusion_is_not_mean_of_folds():
    "Pooling first (the protocol) differs from averaging per-fold UF1 (what some repositories do)."
    folds = [([0, 0, 1], [0, 0, 0]), ([1, 1, 2], [1, 1, 1])]
    pooled = scores_from_confusion(sum(confusion_matrix(t, p, 3) for t, p in folds))["uf1"]
    mean = np.mean([f1_score(t, p, average="macro", labels=range(3), zero_division=0) for t, p in folds])
    assert not np.isclose(pooled, mean)


def test_pool_by_video():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    vp, vl, ids = pool_by_video(probs, [0, 0, 1], ["a", "a", "b"])
    assert ids == ["a", "b"] and vl.tolist() == [0, 1]
    assert np.allclose(vp[0], [0.55, 0.45])


def test_fold_subjects_subset_is_seeded():
    s = [f"sub{i:02d}" for i in range(1, 17)]
    assert fold_subjects(s) == s
    a = fold_subjects(s, 4, seed=0)
    assert a == fold_subjects(s, 4, seed=0) and len(a) == 4 and set(a) <= set(s)


def test_split_never_leaks_the_test_subject():
    ds = ToyMotionClips(n=20, subjects=4)
    for sub in ds.subjects:
        tr, te = split_by_subject(ds, sub)
        assert {ds[i]["subject"] for i in te.indices} == {sub}
        assert sub not in {ds[i]["subject"] for i in tr.indices}


def test_loso_run_and_report(tmp_path):
    ds = ToyMotionClips(n=40, subjects=4)
    cfg = TrainConfig(lr=1e-2, batch_size=8, iterations=20, seed=0)
    res = run_loso(ds, lambda: TinyJointNet(), cfg, LOSOConfig(selection="best_on_test", eval_every=5), device="cpu")
    assert [f["subject"] for f in res.folds] == ds.subjects
    assert sorted(res.predictions["fixed"]["videos"]) == sorted(s["video"] for s in ds.samples)
    assert res.scores("best_on_test", "clip")["acc"] >= res.scores("fixed", "clip")["acc"]
    summary = write_report(res, tmp_path, {"train": cfg.as_dict()})
    for f in ("config.json", "summary.json", "folds.csv", "predictions.csv", "confusion_video.png", "loss_curves.png"):
        assert (tmp_path / f).exists(), f
    assert json.loads((tmp_path / "summary.json").read_text())["fixed/video"]["n"] == 40
    assert "fixed/clip" in format_summary(summary)


def test_loso_resume_skips_finished_folds(tmp_path):
    ds = ToyMotionClips(n=20, subjects=2)
    cfg = TrainConfig(lr=1e-2, batch_size=4, iterations=4, seed=0)
    a = run_loso(ds, lambda: TinyJointNet(), cfg, device="cpu", checkpoint_dir=tmp_path)
    b = run_loso(ds, lambda: TinyJointNet(), cfg, device="cpu", checkpoint_dir=tmp_path, resume=True)
    assert np.allclose(a.predictions["fixed"]["probs"], b.predictions["fixed"]["probs"])
    assert all(f["seconds"] == g["seconds"] for f, g in zip(a.folds, b.folds))   # read back, not retrained


def test_bad_selection_is_refused():
    with pytest.raises(ValueError, match="selection"):
        LOSOConfig(selection="peek")
    with pytest.raises(ValueError, match="eval_every"):
        LOSOConfig(selection="best_on_test")
