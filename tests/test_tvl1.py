"""Tests of mol_edu.tvl1: the batched PyTorch DualTVL1 against OpenCV's cv2.optflow.DualTVL1OpticalFlow.

Stated bounds (measured values in benchmarks/README.md, "TV-L1 in PyTorch"):
- with OpenCV's defaults, mean end-point difference to OpenCV <= 0.05 px on synthetic clips and on warped face photos,
  and error against the exact flow no worse than OpenCV's + 0.005 px;
- with epsilon = 0 (no early stopping, so both run the same iterations) mean difference < 1e-3 px: this is the check
  that sees a wrong detail, and it is shown to fail for a slightly different lambda or median window.
"""
import dataclasses

import cv2
import numpy as np
import pytest
import torch

from mol_edu.loss import endpoint_error
from mol_edu.synthetic import SyntheticMicroExpressions
from mol_edu.tvl1 import (TVL1Settings, face_pair, median_blur, median_filter, pyramid_sizes, resize_linear,
                          settings_of, tvl1_flow_opencv, tvl1_flow_torch, warp_bicubic)

torch.set_num_threads(1)
cv2.setNumThreads(1)

MAX_EPE_TO_OPENCV = 0.05     # px, OpenCV's defaults
GT_MARGIN = 0.005            # px: our error vs the exact flow may exceed OpenCV's by at most this
MAX_EPE_NO_STOPPING = 1e-3   # px, epsilon = 0
NO_STOPPING = TVL1Settings(epsilon=0.0, warps=2, outerIterations=2)


def epe(a, b) -> float:
    return float(endpoint_error(torch.as_tensor(np.asarray(a))[None], torch.as_tensor(np.asarray(b))[None]))


@pytest.fixture(scope="module")
def clip64():
    return SyntheticMicroExpressions(subjects=1, videos_per_class=1, size=64).render(2)


@pytest.fixture(scope="module")
def faces128():
    prev, nxt, flow = zip(*[face_pair(name, size=128) for name in ("astronaut", "grace_hopper")])
    return np.stack(prev), np.stack(nxt), np.stack(flow)


# ---------------------------------------------------------------- settings

def test_defaults_are_opencvs():
    live = cv2.optflow.DualTVL1OpticalFlow_create()
    assert settings_of(live) == TVL1Settings()
    s = TVL1Settings()
    assert (s.tau, s.lambda_, s.theta, s.nscales, s.warps, s.epsilon, s.innerIterations, s.outerIterations,
            s.scaleStep, s.gamma, s.medianFiltering, s.useInitialFlow) == \
        (0.25, 0.15, 0.3, 5, 5, 0.01, 30, 10, 0.8, 0.0, 5, False)
    other = TVL1Settings(tau=0.2, lambda_=0.1, theta=0.25, nscales=3, warps=2, epsilon=0.02, innerIterations=7,
                         outerIterations=3, scaleStep=0.5, gamma=0.1, medianFiltering=3, useInitialFlow=True)
    assert settings_of(other.to_opencv()) == other


def test_key_is_stable_and_changes_with_every_parameter():
    s = TVL1Settings()
    assert s.key() == ("DualTVL1(tau=0.25,lambda=0.15,theta=0.3,nscales=5,warps=5,epsilon=0.01,innerIterations=30,"
                       "outerIterations=10,scaleStep=0.8,gamma=0.0,medianFiltering=5,useInitialFlow=False)")
    assert s.digest() == TVL1Settings().digest() and len(s.digest()) == 16
    changed = {"tau": 0.2, "lambda_": 0.1, "theta": 0.25, "nscales": 4, "warps": 3, "epsilon": 0.02,
               "innerIterations": 20, "outerIterations": 5, "scaleStep": 0.5, "gamma": 0.1, "medianFiltering": 3,
               "useInitialFlow": True}
    assert set(changed) == {f.name for f in dataclasses.fields(TVL1Settings)}
    keys = {dataclasses.replace(s, **{k: v}).key() for k, v in changed.items()}
    digests = {dataclasses.replace(s, **{k: v}).digest() for k, v in changed.items()}
    assert len(keys) == len(digests) == len(changed) and s.key() not in keys
    assert TVL1Settings(nscales=5.0, tau=1 / 4).key() == s.key()


@pytest.mark.parametrize("kw, message", [
    (dict(tau=0), "tau: expected > 0, got 0.0"), (dict(scaleStep=1.0), "scaleStep: expected 0 < scaleStep < 1"),
    (dict(warps=2.5), "warps: expected a finite int, got 2.5"), (dict(medianFiltering=7), "medianFiltering: expected"),
    (dict(useInitialFlow=1), "useInitialFlow: expected a bool"), (dict(epsilon=float("nan")), "epsilon: expected a finite")])
def test_bad_settings_raise_one_line(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as e: TVL1Settings(**kw)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- the pieces against OpenCV

def test_pyramid_resize_warp_and_median_match_opencv():
    rng = np.random.default_rng(1)
    assert pyramid_sizes(144, 144, 5, 0.8) == [(144, 144), (115, 115), (92, 92), (74, 74), (59, 59)]
    assert pyramid_sizes(30, 200, 5, 0.8) == [(30, 200), (24, 160), (19, 128)]
    img = rng.uniform(0, 255, (73, 58)).astype(np.float32)
    down = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    assert np.abs(resize_linear(torch.from_numpy(img), down.shape, 0.8).numpy() - down).max() < 1e-3
    up = cv2.resize(down, (58, 73), interpolation=cv2.INTER_LINEAR)
    assert np.abs(resize_linear(torch.from_numpy(down), (73, 58)).numpy() - up).max() < 1e-3
    smooth = cv2.GaussianBlur(img, (0, 0), 2)
    flow = rng.normal(0, 4, (2, 73, 58)).astype(np.float32)
    ys, xs = np.mgrid[0:73, 0:58].astype(np.float32)
    ref = cv2.remap(smooth, xs + flow[0], ys + flow[1], cv2.INTER_CUBIC)
    got = warp_bicubic(torch.from_numpy(smooth)[None, None], torch.from_numpy(flow)[None])[0, 0].numpy()
    assert np.abs(got - ref).max() < 2e-3
    for k in (3, 5):
        for w in (31, 32):
            x = rng.normal(size=(3, 2, 19, w)).astype(np.float32)
            ref = np.stack([[cv2.medianBlur(c, k) for c in pair] for pair in x])
            assert np.array_equal(median_filter(torch.from_numpy(x), k).numpy(), ref)
            assert np.array_equal(median_blur(torch.from_numpy(x), k).numpy(), ref)


def test_median_blur_is_opencvs_median_on_every_plane_and_the_network_elsewhere(monkeypatch):
    "Stacked planes must not leak into each other: each plane's first and last rows see only their own border."
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 2, 16, 23)).astype(np.float32)
    x[::2] += 100                                  # neighbouring planes far apart: a leak would move the border rows
    for k in (3, 5):
        ref = np.stack([[cv2.medianBlur(c, k) for c in pair] for pair in x])
        assert np.array_equal(median_blur(torch.from_numpy(x), k).numpy(), ref)
        assert np.array_equal(median_blur(torch.from_numpy(x[:, :, 1:]).transpose(-1, -2), k).numpy(),
                              np.stack([[cv2.medianBlur(np.ascontiguousarray(c.T), k) for c in pair] for pair in x[:, :, 1:]]))
    assert torch.equal(median_blur(torch.from_numpy(x), 1), torch.from_numpy(x))
    calls = []
    monkeypatch.setattr("mol_edu.tvl1.median_filter", lambda t, k: calls.append(t.dtype) or t)
    median_blur(torch.from_numpy(x).double(), 5); median_blur(torch.from_numpy(x), 5)
    assert calls == [torch.float64]                # float64 goes to the network, float32 on a CPU to OpenCV


# ---------------------------------------------------------------- agreement

def test_agreement_on_synthetic_clip(clip64):
    prev, nxt = clip64.frames[:-1], clip64.frames[1:]
    ours, theirs = tvl1_flow_torch(prev, nxt).numpy(), tvl1_flow_opencv(prev, nxt)
    assert epe(ours, theirs) <= MAX_EPE_TO_OPENCV
    assert epe(ours, clip64.flow) <= epe(theirs, clip64.flow) + GT_MARGIN
    assert epe(ours, clip64.flow) < 0.5 * epe(0 * ours, clip64.flow)  # and the flow is a real estimate


def test_agreement_on_warped_faces(faces128):
    prev, nxt, exact = faces128
    ours, theirs = tvl1_flow_torch(prev, nxt).numpy(), tvl1_flow_opencv(prev, nxt)
    assert epe(ours, theirs) <= MAX_EPE_TO_OPENCV
    assert epe(ours, exact) <= epe(theirs, exact) + GT_MARGIN
    assert epe(ours, exact) < 0.2 * epe(0 * exact, exact)


def test_same_iterations_same_flow_and_the_check_can_fail(clip64, faces128):
    "Without early stopping both run the same iterations: any wrong detail shows, far above float rounding."
    prev = np.concatenate([clip64.frames[2:4], faces128[0][:1, 16:80, 16:80]])
    nxt = np.concatenate([clip64.frames[3:5], faces128[1][:1, 16:80, 16:80]])
    theirs = tvl1_flow_opencv(prev, nxt, NO_STOPPING)
    assert epe(tvl1_flow_torch(prev, nxt, NO_STOPPING).numpy(), theirs) < MAX_EPE_NO_STOPPING
    for wrong in (dict(lambda_=0.16), dict(medianFiltering=3), dict(scaleStep=0.75)):
        off = tvl1_flow_torch(prev, nxt, dataclasses.replace(NO_STOPPING, **wrong)).numpy()
        assert epe(off, theirs) > MAX_EPE_NO_STOPPING, wrong


@pytest.mark.parametrize("kw", [dict(gamma=0.1), dict(useInitialFlow=True), dict(nscales=3, scaleStep=0.5, medianFiltering=3)])
def test_agreement_with_other_settings(clip64, kw):
    s = TVL1Settings(**kw)
    prev, nxt = clip64.frames[3:5], clip64.frames[4:6]
    init = clip64.flow[3:5] if s.useInitialFlow else None
    assert epe(tvl1_flow_torch(prev, nxt, s, init_flow=init).numpy(),
               tvl1_flow_opencv(prev, nxt, s, init_flow=init)) <= MAX_EPE_TO_OPENCV


# ---------------------------------------------------------------- batching, shapes, errors

def test_batching_equals_one_by_one(clip64):
    prev, nxt = clip64.frames[:4], clip64.frames[1:5]
    alone = torch.stack([tvl1_flow_torch(a, b) for a, b in zip(prev, nxt)])
    assert torch.allclose(tvl1_flow_torch(prev, nxt), alone, atol=1e-5)
    assert torch.allclose(tvl1_flow_torch(prev, nxt, batch_size=3), alone, atol=1e-5)


def test_shapes_dtypes_and_inputs(clip64):
    a, b = clip64.frames[0], clip64.frames[1]
    f = tvl1_flow_torch(a, b)
    assert f.shape == (2, 64, 64) and f.dtype == torch.float32
    assert tvl1_flow_torch(clip64.frames[:2], clip64.frames[1:3]).shape == (2, 2, 64, 64)
    assert torch.allclose(tvl1_flow_torch(torch.from_numpy(a / 255), torch.from_numpy(b / 255)), f, atol=1e-4)
    assert tvl1_flow_torch(clip64.frames[:0], clip64.frames[:0]).shape == (0, 2, 64, 64)
    rect = tvl1_flow_torch(clip64.frames[0, :40], clip64.frames[1, :40])
    assert rect.shape == (2, 40, 64)


@pytest.mark.parametrize("args, kw, message", [
    ((np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8)), {}, r"nxt: expected the shape of prev \(8, 8\), got \(8, 9\)"),
    ((np.zeros((1, 2, 8, 8), np.uint8),) * 2, {}, r"prev: expected shape \(H, W\) or \(N, H, W\), got \(1, 2, 8, 8\)"),
    ((np.zeros((8, 8), np.int32), np.zeros((8, 8), np.uint8)), {}, "prev: expected uint8 or floating-point intensities"),
    ((np.zeros((2, 8), np.uint8),) * 2, {}, r"prev: frames must be at least 3 x 3, got shape \(2, 8\)"),
    ((np.zeros((8, 8), np.uint8),) * 2, dict(settings=TVL1Settings(useInitialFlow=True)), "init_flow: settings.useInitialFlow"),
    ((np.zeros((8, 8), np.uint8),) * 2, dict(settings=TVL1Settings(useInitialFlow=True), init_flow=np.zeros((2, 8, 7))),
     r"init_flow: expected shape \(2, 8, 8\), got \(2, 8, 7\)"),
    ((np.zeros((8, 8), np.uint8),) * 2, dict(init_flow=np.zeros((2, 8, 8))), "init_flow: given, but"),
    ((np.zeros((8, 8), np.uint8),) * 2, dict(batch_size=0), "batch_size: expected >= 1 or None, got 0")])
def test_bad_inputs_raise_one_line(args, kw, message):
    with pytest.raises(ValueError, match=message) as e: tvl1_flow_torch(*args, **kw)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu(clip64):
    prev, nxt = torch.from_numpy(clip64.frames[:-1]), torch.from_numpy(clip64.frames[1:])
    on_gpu = tvl1_flow_torch(prev.cuda(), nxt.cuda())
    assert on_gpu.device.type == "cuda"
    assert epe(on_gpu.cpu(), tvl1_flow_opencv(prev.numpy(), nxt.numpy())) <= MAX_EPE_TO_OPENCV
