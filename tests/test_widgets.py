"""Headless tests of mol_edu.widgets: set control values, assert on widget state and on the functions' outputs.

The demos run the shipped trained model with the untrained one behind a toggle, on clips of the held-out subject."""
import numpy as np
import pytest
import torch

from mol_edu import widgets as Wd
from mol_edu.attribution import attribute, held_out_clips, trained_and_untrained
from mol_edu.synthetic import make_clip
from mol_edu.viz import heat_scale, overlay_heatmap, titles_overflow

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def shipped():
    return trained_and_untrained("synthetic-small")


@pytest.fixture(scope="module")
def models(shipped):
    return shipped[0]


@pytest.fixture(scope="module")
def classes(shipped):
    return shipped[1].model["classes"]


@pytest.fixture(scope="module")
def clips(shipped):
    return held_out_clips(shipped[1])[:2]


def test_demo_clips_are_of_the_held_out_subject(shipped, clips, classes):
    card = shipped[1]
    assert {c.subject for c in clips} == set(card.held_out_subjects)
    assert [c.plan.classname for c in held_out_clips(card)] == classes


def test_as_sample_accepts_both_clip_forms():
    clips = [make_clip("happiness", "sub01", seed=0, size=64), make_clip("surprise", "sub02", seed=1, size=64)]
    s = Wd.as_sample(clips[0])
    assert s["frames"].shape == (8, 64, 64) and 0 <= s["frames"].min() and s["frames"].max() <= 1
    assert s["moved"] == ["mouth_corners"]
    d = {"clip": torch.from_numpy(clips[1].frames).float()[None] / 255, "flow": torch.from_numpy(clips[1].flow),
         "landmarks": torch.from_numpy(clips[1].landmarks), "label": torch.tensor(0), "video": "v"}
    s2 = Wd.as_sample(d)
    assert s2["frames"].shape == (8, 64, 64) and "brows" in s2["moved"]
    with pytest.raises(ValueError, match="clip: expected a SyntheticClip"):
        Wd.as_sample(np.zeros((8, 64, 64)))


def test_as_models():
    m = torch.nn.Linear(1, 1)
    assert Wd.as_models(None) == {} and Wd.as_models(m) == {"model": m}
    with pytest.raises(ValueError, match="model: expected an nn.Module or a dict"):
        Wd.as_models([m])


def test_clip_explorer_slider_toggle_and_numbers(models, clips, classes):
    e = Wd.ClipExplorer(clips, model=models, classes=classes)
    assert list(e.controls)[0] == "model" and e.controls["model"].options == ("trained", "untrained")
    assert e.model is models["trained"]
    assert e.controls["pair"].max == 6 and e.controls["clip"].value == 0
    png0, info0 = e.view.value, e.info.value
    assert png0[:4] == b"\x89PNG" and f"label: {classes[clips[0].label]}" in info0 and "pair 0" in info0
    assert "NME (outer eye corners)" in info0 and "NME (eye centres, the release's loss)" in info0
    assert "inter-ocular" not in info0
    e.controls["pair"].value = 4
    assert e.view.value != png0 and "pair 4" in e.info.value
    trained_png, trained_info = e.view.value, e.info.value
    e.controls["model"].value = "untrained"
    assert e.model is models["untrained"] and e.view.value != trained_png and e.info.value != trained_info
    e.controls["clip"].value = 1
    assert f"label: {classes[clips[1].label]}" in e.info.value
    assert len(e.fig.axes) == 5 and titles_overflow(e.fig) == []
    assert e.view.layout.width == f"{round(e.fig.get_figwidth() * 96)}px"


def test_clip_explorer_static_frames_for_the_docs(models, clips, classes):
    "The docs render `ClipExplorer(clips, model=..., classes=...)` frames with `.set(pair=k)` and `.figure()`."
    e = Wd.ClipExplorer(clips, model=models["trained"], classes=classes)
    assert "model" not in e.controls                         # one model: no toggle
    figs = [e.set(pair=k).figure() for k in (0, 3)]
    assert all(len(f.axes) == 5 for f in figs)
    assert not np.array_equal(figs[0].axes[0].get_images()[0].get_array(), figs[1].axes[0].get_images()[0].get_array())


def test_clip_explorer_without_model_shows_ground_truth_only(clips):
    e = Wd.ClipExplorer(clips[:1])
    assert "predicted" not in e.info.value and len(e.fig.axes) == 4 and "pair 0" in e.info.value


def _heat_panels_match(a, sample):
    "Every heat panel of the explorer's figure is the overlay of its slice, on the explorer's one scale."
    attr = a.explanation[0]
    assert a.scale == heat_scale(attr.magnitude)
    off = 1 if attr.over == "pairs" else 0
    for i in range(len(attr.values)):
        want = overlay_heatmap(sample["frames"][min(i + off, len(sample["frames"]) - 1)], attr.magnitude[i], vmax=a.scale)
        np.testing.assert_allclose(a.fig.axes[i].get_images()[0].get_array(), want, atol=1e-6)
    bar = a.fig.axes[len(attr.values)]                        # the colour bar comes after the heat panels
    assert bar.get_ylim()[1] == pytest.approx(a.scale)


def test_attribution_explorer_every_control_redraws(models, clips, classes):
    a = Wd.AttributionExplorer(clips, models, classes, n_steps=4)
    s0 = Wd.as_sample(clips[0])
    assert "mouth_corners" in a.info.value or "brows" in a.info.value
    assert "pointing score" in a.info.value
    _heat_panels_match(a, s0)
    for name, value in [("method", "saliency"), ("noise_tunnel", True), ("target", 3), ("over", "frames"),
                        ("method", "grad_cam"), ("model", "untrained"), ("clip", 1)]:
        before, info = a.view.value, a.info.value
        a.controls[name].value = value
        assert a.view.value != before, f"{name}={value!r} did not redraw"
        assert a.info.value != info, f"{name}={value!r} did not change the numbers"
        st = a.settings()
        attr = a.explanation[0]
        assert (attr.method, attr.over) == (st["method"], st["over"])
    _heat_panels_match(a, Wd.as_sample(clips[1]))
    assert a.explanation[0].target == 3 and classes[3] in a.info.value and a.explanation[0].values.shape == (8, 64, 64)
    assert titles_overflow(a.fig) == []


def test_attribution_explorer_method_change_is_not_stale(models, clips, classes):
    a = Wd.AttributionExplorer(clips, models, classes, n_steps=4)
    a.set(method="saliency")
    fresh = attribute(models["trained"], Wd.model_input(Wd.as_sample(clips[0])["frames"]), method="saliency", over="pairs")
    np.testing.assert_allclose(a.explanation[0].values, fresh.values, rtol=1e-5, atol=1e-7)
    a.set(method="grad_cam")
    assert a.controls["noise_tunnel"].disabled and "saliency" not in a.info.value and "grad_cam" in a.info.value
    a.set(noise_tunnel=True)                                   # has no effect on Grad-CAM, and says so
    assert "no noise tunnel for grad_cam" in a.info.value and not a.settings()["noise_tunnel"]
    a.set(method="saliency")
    assert not a.controls["noise_tunnel"].disabled and "noise tunnel" in a.info.value and a.settings()["noise_tunnel"]
    a.set(target=-2)
    assert a.explanation[0].target == clips[0].label


def test_f5c_inside(models, clips):
    f = Wd.F5CInside(models, clips[0])
    cfg = models["trained"].cfg
    assert f.controls["channel"].max == cfg.channels - 1
    assert f.controls["node"].max == cfg.feature_size ** 2 - 1
    png0 = f.view.value
    f.controls["node"].value = 0
    assert f.view.value != png0 and "row 0, column 0" in f.info.value
    f.controls["block"].value = "f5c2"
    assert "f5c2" in f.info.value and len(f.fig.axes) == 4
    png1 = f.view.value
    f.controls["model"].value = "untrained"
    assert f.view.value != png1 and titles_overflow(f.fig) == []
    with pytest.raises(ValueError, match="block must be"):
        Wd.f5c_figure(models["trained"], f.sample, block="f5c3", inputs=f.inputs)


def test_lab_clip_plays_the_chosen_aus():
    c = Wd.lab_clip(aus=(1, 2), amplitude=3.0, noise=0.0, size=64, subject="sub19")
    assert c.plan.pattern == "1+2" and c.plan.blink is None and c.subject == "sub19"
    assert "brows" in Wd.as_sample(c)["moved"]
    still = Wd.lab_clip(aus=(1, 2), amplitude=0.0, noise=0.0, size=64)
    assert np.abs(c.frames.astype(int) - still.frames.astype(int)).max() > 0
    with pytest.raises(ValueError, match="apex must be"):
        Wd.lab_clip(apex=0.99)


def test_micro_expression_lab(models, classes):
    lab = Wd.MicroExpressionLab(models, classes, size=64, subject="sub19", n_steps=4)
    assert "mouth_corners" in lab.info.value and lab.clip.subject == "sub19"
    png0 = lab.view.value
    lab.controls["aus"].value = (9,)
    assert lab.view.value != png0 and "AU 9" in lab.info.value and "nose" in lab.info.value
    png1 = lab.view.value
    lab.controls["model"].value = "untrained"
    assert lab.view.value != png1 and titles_overflow(lab.fig) == []


def test_lab_difference_panel_follows_the_apex_and_empty_aus_are_refused(models, classes):
    lab = Wd.MicroExpressionLab(models["trained"], classes, size=64, n_steps=4)
    lab.set(apex=0.2); early = lab.fig.axes[0].get_title()
    lab.set(apex=0.8); late = lab.fig.axes[0].get_title()
    assert "apex" in early and early != late
    png = lab.view.value
    lab.set(aus=())
    assert lab.info.value.startswith("aus: pick at least one") and lab.view.value == png
