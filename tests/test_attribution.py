"""Tests of mol_edu.attribution on a stand-in with MOL's signature (real stem and F5C blocks, tiny heads)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from mol_edu import attribution as A
from mol_edu.faces import FACE_REGIONS, SUBJECT_LEFT_BROW, SUBJECT_LEFT_EYE, SUBJECT_RIGHT_BROW, SUBJECT_RIGHT_EYE
from mol_edu.f5c import ConvStem, F5CBlock


class StandIn(nn.Module):
    "forward((B, 1, T, H, W)) -> .logits, .flow, .landmarks; .stem, .f5c1, .f5c2 as in MOL."
    def __init__(self, classes=3, channels=16, size=32):
        super().__init__()
        s = ConvStem.out_size(size)
        self.stem = ConvStem(channels)
        self.f5c1, self.f5c2 = F5CBlock(channels, s, meta_len=s), F5CBlock(channels, s, meta_len=s)
        self.expression_head = nn.Linear(2 * channels, classes)

    def forward(self, x):
        B, _, T, H, W = x.shape
        f = self.stem(x.transpose(1, 2).reshape(B * T, 1, H, W))
        f = f.view(B, T, *f.shape[1:])
        g1, g2 = self.f5c1(f[:, :-1].flatten(0, 1)), self.f5c2(f[:, 1:].flatten(0, 1))
        feat = torch.cat([g1, g2], 1).view(B, T - 1, -1, *g1.shape[-2:]).mean((1, 3, 4))
        return SimpleNamespace(logits=self.expression_head(feat), flow=x.new_zeros(B, T - 1, 2, H, W),
                               landmarks=x.new_zeros(B, T - 1, 68, 2))


class MotionDetector(nn.Module):
    "A model whose class-1 logit is the squared motion inside a known box: attributions must point at the box."
    def __init__(self, box):
        super().__init__(); self.box = box; self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        (y0, y1), (x0, x1) = self.box
        d = (x[:, 0, 1:] - x[:, 0, :-1])[:, :, y0:y1, x0:x1]
        s = self.w * (d ** 2).sum((1, 2, 3)) * 100
        return SimpleNamespace(logits=torch.stack([-s, s], 1))


@pytest.fixture(scope="module")
def standin():
    torch.manual_seed(0)
    return StandIn().eval()


@pytest.fixture(scope="module")
def face():
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([16 + 10 * np.cos(t), 16 + 10 * np.sin(t)], 1).astype(np.float32)
    lm[SUBJECT_RIGHT_EYE] = [11, 12]; lm[SUBJECT_LEFT_EYE] = [21, 12]
    lm[SUBJECT_RIGHT_BROW] = [11, 8]; lm[SUBJECT_LEFT_BROW] = [21, 8]
    return lm


def test_region_masks_follow_the_landmarks(face):
    m = A.region_masks(face, (32, 32))
    assert set(m) == set(FACE_REGIONS)
    shifted = A.region_masks(face + [3, 0], (32, 32))
    np.testing.assert_array_equal(np.roll(m["eyes"], 3, axis=1), shifted["eyes"])
    bigger = A.region_masks(face, (32, 32), radius={"eyes": 0.4})
    assert bigger["eyes"].sum() > m["eyes"].sum()


def test_regions_of_aus_and_flow(face):
    assert A.regions_of_aus(["AU1", "R2", 12, "L14"]) == ["brows", "mouth_corners"]
    with pytest.raises(ValueError, match="no region is known"):
        A.regions_of_aus([3])
    m = {"top": np.zeros((32, 32), bool), "bottom": np.zeros((32, 32), bool)}
    m["top"][:8] = True; m["bottom"][24:] = True
    flow = np.zeros((2, 2, 32, 32), np.float32); flow[:, 0, 26:] = 1.0; flow[:, 1, :8] = 0.1
    assert A.moved_regions_from_flow(flow, m) == ["bottom"]
    assert A.moved_regions_from_flow(flow, m, threshold=0.05) == ["bottom", "top"]


def test_region_mass_sums_and_pointing_score(face):
    m = A.region_masks(face, (32, 32))
    attr = np.random.default_rng(0).normal(size=(3, 32, 32))
    mass = A.region_mass(attr, m)
    assert mass.shape == (3, 5)
    # without overlaps, the regions' masses add up to the mass inside their union
    union = np.zeros((32, 32), bool)
    for r in ["eyes", "mouth_corners"]: union |= m[r]
    ps = A.pointing_score(attr, union)
    idx = [list(m).index("eyes"), list(m).index("mouth_corners")]
    assert not (m["eyes"] & m["mouth_corners"]).any()
    np.testing.assert_allclose(mass[:, idx].sum(), ps.mass, rtol=1e-6)
    assert ps.area == pytest.approx(union.mean())
    assert A.pointing_score(np.ones((32, 32)), union).score == pytest.approx(1.0)


@pytest.mark.parametrize("method", A.METHODS)
@pytest.mark.parametrize("over,N", [("frames", 4), ("pairs", 3)])
def test_every_method_returns_the_clip_shape(standin, method, over, N):
    clip = torch.rand(1, 4, 32, 32)
    a = A.attribute(standin, clip, target=0, method=method, over=over)
    assert a.values.shape == (N, 32, 32) and np.isfinite(a.values).all()
    assert a.probs.shape == (3,) and a.probs.sum() == pytest.approx(1, abs=1e-5)


def test_model_mode_is_restored(standin):
    standin.train()
    A.attribute(standin, torch.rand(1, 4, 32, 32), method="saliency")
    assert standin.training
    standin.eval()


def test_integrated_gradients_is_complete():
    model = MotionDetector(((8, 16), (16, 24)))
    clip = torch.rand(1, 1, 4, 32, 32)
    still = clip[:, :, :1].expand_as(clip)
    f = A.LogitsModel(model)
    with torch.no_grad(): gap = float(f(clip)[0, 1] - f(still)[0, 1])
    for over in ("pairs", "frames"):
        ig = A.attribute(model, clip, target=1, method="integrated_gradients", over=over, n_steps=32)
        assert ig.values.sum() == pytest.approx(gap, rel=1e-3)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion", "pair_occlusion"])
def test_attributions_point_at_the_motion(method):
    box = ((8, 16), (16, 24))
    model = MotionDetector(box)
    gen = torch.Generator().manual_seed(0)
    clip = 0.5 + 0.01 * torch.randn(1, 1, 4, 32, 32, generator=gen)
    clip[0, 0, 1:, 8:16, 16:24] += 0.1 * torch.rand(3, 8, 8, generator=gen)    # motion only inside the box
    mask = np.zeros((32, 32), bool); mask[8:16, 16:24] = True
    a = A.attribute(model, clip, target=1, method=method, over="pairs", patch=8, stride=8)
    ps = A.pointing_score(a.values, mask)
    if method == "pair_occlusion":      # whole-frame occlusion says *when*, not where: uniform in space
        assert ps.score == pytest.approx(1.0, rel=1e-4)
    else:
        assert ps.mass > 0.9 and ps.score > 10


def test_noise_tunnel_changes_saliency_and_is_seeded(standin):
    clip = torch.rand(1, 4, 32, 32)
    plain = A.attribute(standin, clip, target=0, method="saliency")
    kw = dict(target=0, method="saliency", noise_tunnel=True, nt_samples=4, nt_stdev=0.1)
    torch.manual_seed(1)
    smooth = A.attribute(standin, clip, **kw)
    assert smooth.values.shape == plain.values.shape and not np.allclose(smooth.values, plain.values)
    state = torch.random.get_rng_state()
    np.testing.assert_array_equal(A.attribute(standin, clip, **kw).values, smooth.values)   # same seed, same map
    assert torch.equal(torch.random.get_rng_state(), state)                                # global RNG untouched
    other = A.attribute(standin, clip, **kw, nt_seed=5).values
    assert not np.allclose(other, smooth.values)


def test_bad_arguments(standin):
    clip = torch.rand(1, 4, 32, 32)
    with pytest.raises(ValueError, match="over must be"): A.attribute(standin, clip, over="time")
    with pytest.raises(ValueError, match="baseline must be"): A.attribute(standin, clip, baseline="blur")
    with pytest.raises(ValueError, match="target must be"): A.attribute(standin, clip, target=-1)


def test_record_activations_removes_hooks(standin):
    with A.record_activations(standin, ["f5c1", "f5c2.ccc"]) as acts:
        standin(torch.rand(2, 1, 4, 32, 32))
    assert acts["f5c1"][0].shape == (6, 16, 4, 4) and len(acts["f5c2.ccc"]) == 1
    assert all(len(m._forward_hooks) == 0 for m in standin.modules())
    with pytest.raises(ValueError, match="no sub-module"):
        with A.record_activations(standin, ["f5c3"]): pass


def test_fcc_sees_everything_conv_does_not(standin):
    erf = A.effective_receptive_field(standin.f5c1.fcc, torch.randn(1, 16, 4, 4), position=(0, 0))
    assert (erf > 0).all()
    conv = nn.Conv2d(16, 16, 3, padding=1)
    erf = A.effective_receptive_field(conv, torch.randn(1, 16, 8, 8), position=(4, 4))
    assert (erf > 0).sum() == 9 and erf[3:6, 3:6].all()


def test_ccc_neighbours_match_the_layer(standin):
    ins = A.f5c_inputs(standin, torch.rand(1, 4, 32, 32))
    x = ins["f5c1.fcc"][:2]
    nbr = A.ccc_neighbours(standin.f5c1.ccc, x)
    assert nbr.shape == (2, 16, standin.f5c1.ccc.k)
    np.testing.assert_array_equal(nbr[:, :, 0], np.tile(np.arange(16), (2, 1)))
    fig = A.plot_neighbour_graph(nbr[0], (4, 4), nodes=[0])
    assert len(fig.axes[0].collections) == 2


def test_kernels_and_figures(standin, face):
    k = A.fcc_kernels(standin.f5c1.fcc, size=4)
    assert set(k) == {"kernel1_h", "kernel2_w", "kernel1_w", "kernel2_h"} and k["kernel2_w"].shape == (8, 4)
    frames = np.random.rand(4, 32, 32).astype(np.float32)
    ex = A.explain_clip(standin, frames, np.repeat(face[None], 4, 0), moved=["eyes"], method="grad_cam")
    assert ex.mass.shape == (3, 5) and ex.moved == ["eyes"]
    assert len(A.plot_attribution(ex.attribution, frames).axes) == 4          # three slices and the colour bar
    assert len(A.plot_region_scores(ex.mass, moved=ex.moved).axes) == 1
    with pytest.raises(ValueError, match="unknown regions"):
        A.explain_clip(standin, frames, np.repeat(face[None], 4, 0), moved=["ears"])


def test_moved_regions_of_synthetic():
    from mol_edu.synthetic import make_clip
    clip = make_clip("surprise", "sub02", seed=3, size=64)
    assert "brows" in A.moved_regions_of_synthetic(clip)     # AU1 + AU2 raise the brows


def test_pointing_benchmark_refuses_what_it_cannot_score(standin):
    with pytest.raises(ValueError, match="clips: expected at least one"):
        A.pointing_benchmark(standin, [])


def test_unknown_method_lists_the_registry(standin):
    with pytest.raises(ValueError) as e:
        A.attribute(standin, torch.rand(1, 4, 32, 32), method="lime")
    msg = str(e.value)
    assert "\n" not in msg and "'lime'" in msg and all(repr(m) in msg for m in A.ATTRIBUTIONS)


def test_registered_method_is_used_everywhere(standin):
    seen = []
    def centre(task, **opts):
        "All attribution on the centre pixel of every slice."
        seen.append((task.over, task.target, tuple(task.inputs.shape), sorted(opts)))
        v = torch.zeros(task.inputs.shape[2:]); v[:, 16, 16] = 1.0
        return v
    A.register_attribution("centre", centre)
    try:
        a = A.attribute(standin, torch.rand(1, 4, 32, 32), target=2, method="centre", over="pairs")
        assert a.values.shape == (3, 32, 32) and a.method == "centre" and seen[-1][:3] == ("pairs", 2, (1, 1, 4, 32, 32))
        mask = np.zeros((32, 32), bool); mask[16, 16] = True
        assert A.pointing_score(a.values, mask).mass == pytest.approx(1.0)
        from mol_edu.synthetic import make_clip
        bench = A.pointing_benchmark(standin, [make_clip("surprise", "sub01", seed=0, size=32)], methods=("centre",))
        assert bench["centre"]["clips"] == 1 and len(bench["centre"]["per_clip"]) == 1
        with pytest.raises(ValueError, match="noise_tunnel works with"):
            A.attribute(standin, torch.rand(1, 4, 32, 32), method="centre", noise_tunnel=True)
    finally:
        del A.ATTRIBUTIONS["centre"]
    with pytest.raises(ValueError, match="name: expected a simple name"):
        A.register_attribution("two words", centre)
    with pytest.raises(ValueError, match="fn: expected a function"):
        A.register_attribution("nope", None)


def test_a_method_returning_the_wrong_shape_is_refused(standin):
    A.register_attribution("flat", lambda task, **_: torch.zeros(3))
    try:
        with pytest.raises(ValueError, match="flat output: expected shape"):
            A.attribute(standin, torch.rand(1, 4, 32, 32), method="flat")
    finally:
        del A.ATTRIBUTIONS["flat"]


def test_motion_coordinates_explain_the_clip_itself():
    clip = torch.rand(2, 1, 5, 8, 8)
    torch.testing.assert_close(A.from_motion(A.to_motion(clip)), clip)
    # the detector reads frame differences only, so with a black baseline over pairs the onset's share is 0 and
    # Integrated Gradients over the pairs adds up to f(clip) - f(black) = f(clip): the model saw the clip, not a
    # clip with a black first frame
    model = MotionDetector(((8, 16), (16, 24)))
    x = torch.rand(1, 1, 4, 32, 32)
    with torch.no_grad(): f = float(A.LogitsModel(model)(x)[0, 1])
    ig = A.attribute(model, x, target=1, method="integrated_gradients", over="pairs", baseline="zeros", n_steps=32)
    assert ig.values.sum() == pytest.approx(f, rel=1e-3)
