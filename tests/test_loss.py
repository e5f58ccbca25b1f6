"""Tests of mol_edu.loss: the released joint loss and the EPE / NME metrics."""
import math
from types import SimpleNamespace

import pytest
import torch

from mol_edu.faces import (SUBJECT_LEFT_EYE, SUBJECT_RIGHT_EYE, eye_centre_distance, landmark_nme,
                           outer_corner_distance)
from mol_edu.loss import LossWeights, endpoint_error, flow_loss, joint_loss, landmark_loss


def _face(B=2, P=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(B, P, 68, 2, generator=g) * 10 + 20
    p[..., SUBJECT_RIGHT_EYE, 0] -= 15; p[..., SUBJECT_LEFT_EYE, 0] += 15
    return p


def test_flow_loss_is_mse_over_pairs():
    a, b = torch.randn(2, 7, 2, 4, 4), torch.randn(2, 7, 2, 4, 4)
    assert torch.allclose(flow_loss(a, b), ((a - b) ** 2).mean() / 7)


def test_landmark_loss_matches_loop():
    t = _face(); p = t + torch.randn_like(t)
    ref = 0.0
    for k in range(t.shape[1]):
        ref += sum(float((p[b, k] - t[b, k]).abs().sum() / eye_centre_distance(t[b, k]) / 68) for b in range(2)) / 2
    assert math.isclose(float(landmark_loss(p, t)), ref, rel_tol=1e-5)


def test_joint_loss_weights_and_terms():
    B, T = 2, 4
    t = _face(B, T)
    out = SimpleNamespace(logits=torch.randn(B, 5, requires_grad=True), flow=torch.randn(B, T - 1, 2, 8, 8),
                          landmarks=t[:, 1:] + 1)
    batch = {"label": torch.tensor([1, 3]), "flow": torch.zeros(B, T - 1, 2, 8, 8), "landmarks": t}
    d = joint_loss(out, batch)
    assert set(d) == {"loss", "mer", "flow", "ldm"}
    assert torch.allclose(d["loss"], d["mer"] + 10 * d["flow"] + 0.1 * d["ldm"])
    d2 = joint_loss(out, batch, LossWeights(mer=2, flow=0, ldm=1))
    assert torch.allclose(d2["loss"], 2 * d["mer"] + d["ldm"])
    d["loss"].backward()
    assert out.logits.grad is not None


def test_joint_loss_rejects_bad_shapes():
    out = SimpleNamespace(logits=torch.randn(2, 5), flow=torch.randn(2, 3, 2, 8, 8), landmarks=torch.randn(2, 3, 68, 2))
    batch = {"label": torch.tensor([1, 3]), "flow": torch.zeros(2, 2, 2, 8, 8), "landmarks": _face(2, 4)}
    with pytest.raises(ValueError, match="flow target"):
        joint_loss(out, batch)


def test_metrics_by_hand():
    flow = torch.zeros(1, 1, 2, 1, 2); flow[0, 0, 0, 0, 0] = 3; flow[0, 0, 1, 0, 0] = 4
    assert math.isclose(float(endpoint_error(torch.zeros_like(flow), flow)), 2.5)
    t = _face(1, 1)
    oc, ec = float(outer_corner_distance(t)), float(eye_centre_distance(t))
    assert math.isclose(float(landmark_nme(t + torch.tensor([3.0, 4.0]), t)), 5 / oc, rel_tol=1e-5)
    assert math.isclose(float(landmark_nme(t + torch.tensor([3.0, 4.0]), t, "eye_centres")), 5 / ec, rel_tol=1e-5)
    with pytest.raises(ValueError, match="norm"):
        landmark_nme(t, t, "nose")
