"""Headless tests of mol_edu.widgets: set control values, assert on widget state and on the functions' outputs."""
import numpy as np
import pytest
import torch

from mol_edu import widgets as Wd
from mol_edu.model import MOL, MOLConfig
from mol_edu.action_units import scheme_classes
from mol_edu.synthetic import make_clip

CLASSES = scheme_classes("casme2")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MOL(MOLConfig.preset("small")).eval()


@pytest.fixture(scope="module")
def clips(model):
    size = model.cfg.image_size
    return [make_clip("happiness", "sub01", seed=0, size=size), make_clip("surprise", "sub02", seed=1, size=size)]


def test_as_sample_accepts_both_clip_forms(clips):
    s = Wd.as_sample(clips[0])
    assert s["frames"].shape == (8, 64, 64) and 0 <= s["frames"].min() and s["frames"].max() <= 1
    assert s["moved"] == ["mouth_corners"]
    d = {"clip": torch.from_numpy(clips[1].frames).float()[None] / 255, "flow": torch.from_numpy(clips[1].flow),
         "landmarks": torch.from_numpy(clips[1].landmarks), "label": torch.tensor(0), "video": "v"}
    s2 = Wd.as_sample(d)
    assert s2["frames"].shape == (8, 64, 64) and "brows" in s2["moved"]
    with pytest.raises(ValueError, match="clip: expected a SyntheticClip"):
        Wd.as_sample(np.zeros((8, 64, 64)))


def test_clip_explorer_slider_changes_view_and_numbers(model, clips):
    e = Wd.ClipExplorer(clips, model, CLASSES)
    assert e.controls["pair"].max == 6 and e.controls["clip"].value == 0
    png0, info0 = e.view.value, e.info.value
    assert png0[:4] == b"\x89PNG" and "label: happiness" in info0 and "pair 0" in info0
    e.controls["pair"].value = 4
    assert e.view.value != png0 and "pair 4" in e.info.value
    e.controls["clip"].value = 1
    assert "label: surprise" in e.info.value
    assert len(e.fig.axes) == 5


def test_clip_explorer_without_model_shows_ground_truth_only(clips):
    e = Wd.ClipExplorer(clips[:1])
    assert "predicted" not in e.info.value and len(e.fig.axes) == 4


def test_attribution_explorer(model, clips):
    a = Wd.AttributionExplorer(clips, model, CLASSES, n_steps=4)
    png0 = a.view.value
    assert "mouth_corners" in a.info.value and "pointing score" in a.info.value
    a.controls["method"].value = "grad_cam"
    assert a.view.value != png0 and "grad_cam" in a.info.value
    attr, mass, ps = a.explanation
    assert attr.values.shape == (7, 64, 64) and mass.shape == (7, 5)
    np.testing.assert_allclose(attr.probs.sum(), 1, atol=1e-5)
    a.controls["target"].value = 3
    assert "repression" in a.info.value and a.explanation[0].target == 3
    a.controls["over"].value = "frames"
    assert a.explanation[0].values.shape == (8, 64, 64)


def test_f5c_inside(model, clips):
    f = Wd.F5CInside(model, clips[0])
    assert f.controls["channel"].max == model.cfg.channels - 1
    assert f.controls["node"].max == model.cfg.feature_size ** 2 - 1
    png0 = f.view.value
    f.controls["node"].value = 0
    assert f.view.value != png0 and "row 0, column 0" in f.info.value
    f.controls["block"].value = "f5c2"
    assert "f5c2" in f.info.value and len(f.fig.axes) == 4
    with pytest.raises(ValueError, match="block must be"):
        Wd.f5c_figure(model, f.sample, block="f5c3", inputs=f.inputs)


def test_lab_clip_plays_the_chosen_aus():
    c = Wd.lab_clip(aus=(1, 2), amplitude=3.0, noise=0.0, size=64)
    assert c.plan.pattern == "1+2" and c.plan.blink is None
    assert "brows" in Wd.as_sample(c)["moved"]
    still = Wd.lab_clip(aus=(1, 2), amplitude=0.0, noise=0.0, size=64)
    assert np.abs(c.frames.astype(int) - still.frames.astype(int)).max() > 0
    with pytest.raises(ValueError, match="apex must be"):
        Wd.lab_clip(apex=0.99)


def test_micro_expression_lab(model):
    lab = Wd.MicroExpressionLab(model, CLASSES, size=64)
    assert "mouth_corners" in lab.info.value
    png0 = lab.view.value
    lab.controls["aus"].value = (9,)
    assert lab.view.value != png0 and "AU 9" in lab.info.value and "nose" in lab.info.value


def test_lab_difference_panel_follows_the_apex_and_empty_aus_are_refused(model):
    lab = Wd.MicroExpressionLab(model, CLASSES, size=64)
    lab.set(apex=0.2); early = lab.fig.axes[0].get_title()
    lab.set(apex=0.8); late = lab.fig.axes[0].get_title()
    assert "apex" in early and early != late
    png = lab.view.value
    lab.set(aus=())
    assert lab.info.value.startswith("aus: pick at least one") and lab.view.value == png
