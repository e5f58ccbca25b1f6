"""Tests of the synthetic micro-expression generator (mol_edu.synthetic): exact ground truth, determinism,
the Dataset contract, third-party checks (OpenCV TV-L1, dlib) and that the task is solvable by motion only."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mol_edu.action_units as au
import mol_edu.identities as idn
import mol_edu.synthetic as syn
from mol_edu.faces import clip_indices, dlib_landmarks, landmark_nme
from mol_edu.action_units import class_patterns, parse_aus, scheme_classes
from mol_edu.synthetic import SyntheticMicroExpressions, SynthConfig, make_clip, plan_video, render_frames

torch.set_num_threads(1)

# Stated agreement bounds (measured values in benchmarks/README.md, "Synthetic data" section)
TVL1_MAX_EPE = 0.15          # mean end-point error of OpenCV TV-L1 (defaults) vs the exact flow, px at 128
TVL1_MAX_RATIO = 0.5         # ... and at most half the error of predicting zero flow
DLIB_MAX_MEAN_NME = 0.06     # dlib 68 points vs exact landmarks, NME by the eye-centre distance (the stricter one)
DLIB_MAX_NME = 0.10          # ... worst single frame


def _warp_back(nxt, flow):
    H, W = nxt.shape
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    pts = torch.tensor(np.stack([xs + flow[0], ys + flow[1]], -1))[None]
    g = au._px_to_grid(pts, H, W)
    return F.grid_sample(torch.tensor(nxt, dtype=torch.float32)[None, None], g, mode="bilinear",
                         padding_mode="border", align_corners=True)[0, 0].numpy()


def test_shapes_and_types():
    c = make_clip("happiness", "sub02", seed=3)
    assert c.frames.shape == (8, 128, 128) and c.frames.dtype == np.uint8
    assert c.flow.shape == (7, 2, 128, 128) and c.flow.dtype == np.float32
    assert c.landmarks.shape == (8, 68, 2) and c.landmarks.dtype == np.float32
    assert (c.label, c.subject) == (1, "sub02")
    c2 = make_clip(0, 3, seed=1, size=(48, 64))
    assert c2.frames.shape == (8, 48, 64) and c2.flow.shape == (7, 2, 48, 64)


def test_same_seed_same_bytes_and_different_seed_differs():
    a, b = make_clip(2, "sub05", seed=11), make_clip(2, "sub05", seed=11)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.flow.tobytes() == b.flow.tobytes() and a.landmarks.tobytes() == b.landmarks.tobytes()
    c = make_clip(2, "sub05", seed=12)
    assert a.frames.tobytes() != c.frames.tobytes()


def test_frame_is_the_same_in_every_clip_and_full_render():
    cfg = SynthConfig()
    plan = plan_video(3, "sub04", 9, cfg)
    full = render_frames(plan, np.arange(plan.n_frames), cfg, with_flow=False)
    for j in range(plan.n_frames // 8):
        ids = clip_indices(plan.n_frames)[j]
        clip = render_frames(plan, ids, cfg)
        assert np.array_equal(clip.frames, full.frames[ids])
        np.testing.assert_allclose(clip.landmarks, full.landmarks[ids], atol=1e-4)


def test_warp_back_with_exact_flow_beats_no_warp():
    c = make_clip("disgust", "sub04", seed=5, noise=0.0, illumination=0.0, amplitude=(3, 3), blink_prob=0.0)
    e_none, e_gt = [], []
    for k in range(7):
        prev, nxt = c.frames[k].astype(np.float32), c.frames[k + 1].astype(np.float32)
        moving = np.hypot(*c.flow[k]) > 0.5
        if moving.sum() < 50: continue
        e_none.append(np.abs(nxt - prev)[moving].mean())
        e_gt.append(np.abs(_warp_back(nxt, c.flow[k]) - prev)[moving].mean())
    assert len(e_gt) >= 2
    assert np.mean(e_gt) < 0.5 * np.mean(e_none), (e_gt, e_none)
    # the opposite sign (the other convention) is worse than no warp at all
    k = int(np.argmax([np.hypot(*f).max() for f in c.flow]))
    prev, nxt = c.frames[k].astype(np.float32), c.frames[k + 1].astype(np.float32)
    moving = np.hypot(*c.flow[k]) > 0.5
    assert np.abs(_warp_back(nxt, -c.flow[k]) - prev)[moving].mean() > np.abs(nxt - prev)[moving].mean()


def test_inversion_is_exact_not_small_motion():
    cfg = SynthConfig(amplitude=(3, 3))
    plan = plan_video("surprise", "sub01", 2, cfg)
    ids = clip_indices(plan.n_frames)[0]
    c = render_frames(plan, ids, cfg)
    nf = idn.neutral_face(idn.make_identity(plan.subject), 128, "crop")
    U = syn._backward_fields(plan, nf, ids.astype(float), 128, 128)
    grid = au._pixel_grid(128, 128)
    y = grid + torch.tensor(c.flow).permute(0, 2, 3, 1)
    resid = y + au.sample_field(U[1:], y).permute(0, 2, 3, 1) - (grid + U[:-1].permute(0, 2, 3, 1))
    assert float(resid.abs().max()) < 1e-3
    # landmarks: Psi_t(l_t) = neutral landmarks
    l = torch.tensor(c.landmarks)[:, None]
    back = l + au.sample_field(U, l).permute(0, 2, 3, 1)
    assert float((back[:, 0] - torch.tensor(nf.landmarks, dtype=torch.float32)).abs().max()) < 1e-3
    # the small-motion shortcut U_k - U_{k+1} is measurably different from the exact flow
    shortcut = (U[:-1] - U[1:]).numpy()
    assert np.abs(shortcut - c.flow).max() > 5e-3


def test_landmarks_move_with_the_flow():
    c = make_clip("happiness", "sub06", seed=4, amplitude=(3, 3))
    for k in range(7):
        l = torch.tensor(c.landmarks[k])[None, None]
        f = au.sample_field(torch.tensor(c.flow[k])[None], l)[0, :, 0].T.numpy()
        # the flow is only known on the grid, so its bilinear interpolant carries the landmark to ~0.01 px
        np.testing.assert_allclose(c.landmarks[k] + f, c.landmarks[k + 1], atol=0.03)


def test_tvl1_agrees_with_ground_truth():
    import cv2
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    inner = (slice(8, -8), slice(8, -8))
    for lab, sub, seed, k in [(0, 1, 0, 2), (2, 5, 2, 4)]:
        c = make_clip(lab, sub, seed=seed)
        est = tv.calc(c.frames[k], c.frames[k + 1], None)
        gt = c.flow[k].transpose(1, 2, 0)
        epe = np.linalg.norm(est - gt, axis=-1)[inner].mean()
        zero = np.linalg.norm(gt, axis=-1)[inner].mean()
        assert epe < TVL1_MAX_EPE and epe < TVL1_MAX_RATIO * zero, (epe, zero)


def test_dlib_agrees_with_ground_truth_landmarks():
    nmes = []
    for sub in (1, 2, 3, 4):
        c = make_clip(sub % 5, sub, seed=sub)
        for k in (0, 6):
            lm = dlib_landmarks(c.frames[k])
            assert lm is not None, f"dlib found no face in {c.subject} frame {k}"
            nmes.append(float(landmark_nme(lm, c.landmarks[k], norm="eye_centres")))
    assert np.mean(nmes) < DLIB_MAX_MEAN_NME and max(nmes) < DLIB_MAX_NME, nmes


def test_dataset_sample_contract_and_loso():
    ds = SyntheticMicroExpressions(subjects=4, videos_per_class=1, size=32)
    s = ds[len(ds) - 1]
    assert set(s) == {"clip", "flow", "landmarks", "label", "subject", "video"}
    assert s["clip"].shape == (1, 8, 32, 32) and s["clip"].dtype == torch.float32
    assert 0 <= float(s["clip"].min()) and float(s["clip"].max()) <= 1
    assert s["flow"].shape == (7, 2, 32, 32) and s["flow"].dtype == torch.float32
    assert s["landmarks"].shape == (8, 68, 2) and s["landmarks"].dtype == torch.float32
    assert s["label"].dtype == torch.int64 and s["label"].ndim == 0
    assert isinstance(s["subject"], str) and isinstance(s["video"], str) and s["video"].startswith(s["subject"] + "/")
    assert ds.classes == scheme_classes("casme2") and ds.subjects == ["sub01", "sub02", "sub03", "sub04"]
    train, test = ds.loso_split("sub03")
    assert set(test.clip_subjects) == {"sub03"} and "sub03" not in set(train.clip_subjects)
    assert len(train) + len(test) == len(ds) and train.classes == ds.classes
    # the same corpus seed gives the same bytes, in any order of access
    ds2 = SyntheticMicroExpressions(subjects=4, videos_per_class=1, size=32)
    assert torch.equal(ds2[len(ds) - 1]["clip"], s["clip"])
    # labels are balanced per subject: the subject says nothing about the label
    from collections import Counter
    per = Counter((p.subject, p.label) for _, p in ds.videos)
    assert set(per.values()) == {1} and len(per) == 4 * 5
    with pytest.raises(ValueError, match="not in this corpus"): ds.loso_split("sub07")


def test_dataset_cache_returns_same_sample():
    ds = SyntheticMicroExpressions(subjects=2, videos_per_class=1, size=32, cache=True)
    a, b = ds[0], ds[0]
    assert torch.equal(a["clip"], b["clip"]) and torch.allclose(a["flow"], b["flow"], atol=2e-3)


def test_schemes_disjoint_by_default_overlap_adds_label_noise():
    for scheme in ("casme2", "samm", "3class"):
        owner = {}
        for k, pats in class_patterns(scheme).items():
            for p in pats:
                key = frozenset(parse_aus(p))
                assert owner.setdefault(key, k) == k, (scheme, p)
        noisy = {}
        shared = False
        for k, pats in class_patterns(scheme, overlap=True).items():
            for p in pats:
                key = frozenset(parse_aus(p))
                shared |= noisy.setdefault(key, k) != k
        assert shared, scheme
    assert scheme_classes("samm") == ["surprise", "happiness", "anger", "contempt", "others"]
    assert scheme_classes("megc") == ["surprise", "positive", "negative"]


def test_bad_inputs_fail_with_one_line_errors():
    with pytest.raises(ValueError, match="label: expected one of"): make_clip("joy", 1, 0)
    with pytest.raises(ValueError, match="subject: expected"): make_clip(0, "alice", 0)
    with pytest.raises(ValueError, match="scheme: expected one of"): make_clip(0, 1, 0, scheme="ck+")
    with pytest.raises(ValueError, match="clip_index: expected"): make_clip(0, 1, 0, clip_index=99)
    with pytest.raises(ValueError, match="size: expected at least"): make_clip(0, 1, 0, size=8)
    with pytest.raises(ValueError, match="view: expected"): make_clip(0, 1, 0, view="full")
    with pytest.raises(ValueError, match="AU pattern: cannot read"): parse_aus("12+99")
    with pytest.raises(ValueError, match="a video needs at least 8 frames"): clip_indices(5)


def test_subjects_are_distinct():
    faces = [idn.neutral_face(idn.make_identity(i), 64, "crop") for i in range(1, 17)]
    ims = np.stack([f.image[0, 0, f.margin:-f.margin, f.margin:-f.margin].numpy().ravel() for f in faces])
    d = np.abs(ims[:, None] - ims[None]).mean(-1)
    assert d[~np.eye(16, dtype=bool)].min() > 3.0   # grey levels: every pair of subjects looks different


def _loso_accuracy(X, y, g):
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X = np.asarray(X); pred = np.zeros_like(y)
    for s in np.unique(g):
        tr = g != s
        pred[~tr] = make_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0)).fit(X[tr], y[tr]).predict(X[~tr])
    return float((pred == y).mean())


def test_solvable_by_motion_only():
    import cv2
    ds = SyntheticMicroExpressions(subjects=8, videos_per_class=2, size=64)
    first_clip = {v: i for i, (v, j) in reversed(list(enumerate(ds.items))) if j == 0}
    app, apex, mot, y, g = [], [], [], [], []
    for v, i in sorted(first_clip.items()):
        c = ds.render(i)
        app.append(cv2.resize(c.frames[0], (16, 16), interpolation=cv2.INTER_AREA).ravel() / 255.0)
        apex.append(cv2.resize(c.frames[4], (16, 16), interpolation=cv2.INTER_AREA).ravel() / 255.0)
        mot.append(au.region_motion_features(c.flow, c.landmarks)); y.append(c.label); g.append(c.subject)
    y, g = np.array(y), np.array(g)
    chance = 1 / len(ds.classes)
    acc_app, acc_apex, acc_mot = (_loso_accuracy(X, y, g) for X in (app, apex, mot))
    assert acc_app < chance + 0.15, acc_app      # one frame: chance (0.2) under LOSO
    assert acc_apex < chance + 0.2, acc_apex     # even the apex frame alone says little
    assert acc_mot > 0.6, acc_mot                # motion: far above chance
