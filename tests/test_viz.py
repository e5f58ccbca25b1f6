"""Tests of mol_edu.viz: the colour wheel, flow colours, arrows, landmark overlays and differences."""
import numpy as np
import pytest
import torch

from mol_edu import viz
from mol_edu.faces import landmark_nme


def test_colorwheel_segments():
    wheel = viz.make_colorwheel()
    assert wheel.shape == (55, 3)
    assert wheel.min() >= 0 and wheel.max() <= 255
    # every colour has one channel at full value
    assert (wheel.max(1) == 255).all()


@pytest.mark.parametrize("u,v,rgb", [(1, 0, (1, 0, 0)), (-1, 0, (0, 209 / 255, 1)), (0, 0, (1, 1, 1))])
def test_flow_to_color_cardinal_directions(u, v, rgb):
    flow = np.zeros((2, 1, 1)); flow[0], flow[1] = u, v
    np.testing.assert_allclose(viz.flow_to_color(flow, max_norm=1.0)[0, 0], rgb, atol=0.03)


def test_flow_to_color_saturation_and_overflow():
    flow = np.zeros((2, 1, 3)); flow[0] = [0.5, 1.0, 2.0]
    c = viz.flow_to_color(flow, max_norm=1.0)[0]
    np.testing.assert_allclose(c[0], [1, 0.5, 0.5], atol=1e-6)   # half speed: half saturated red
    np.testing.assert_allclose(c[1], [1, 0, 0], atol=1e-6)       # full speed: red
    np.testing.assert_allclose(c[2], [0.75, 0, 0], atol=1e-6)    # beyond max_norm: darkened


def test_flow_to_color_accepts_tensors_and_is_scale_free():
    flow = torch.randn(2, 6, 7)
    np.testing.assert_allclose(viz.flow_to_color(flow), viz.flow_to_color(flow.numpy() * 3), atol=1e-5)


def test_flow_to_color_rejects_bad_shape():
    with pytest.raises(ValueError, match="flow: expected shape"):
        viz.flow_to_color(np.zeros((6, 7, 2)))


def test_cell_average_and_arrows():
    flow = np.zeros((2, 16, 16)); flow[0, :8] = 1.0
    avg = viz.cell_average(flow, 8)
    np.testing.assert_allclose(avg[0], [[1, 1], [0, 0]])
    fig = viz.plot_flow_arrows(flow, image=np.zeros((16, 16)), step=8)
    q = fig.axes[0].collections[0]
    np.testing.assert_allclose(q.U, [1, 1, 0, 0])


def test_landmark_error_and_overlay():
    gt = np.random.default_rng(0).uniform(10, 50, (68, 2)).astype(np.float32)
    oc = np.hypot(*(gt[45] - gt[36]))                                      # outer eye corners, by hand
    np.testing.assert_allclose(landmark_nme(gt + [3, 4], gt), 5 / oc, rtol=1e-5)
    fig = viz.plot_landmarks(np.zeros((64, 64)), gt, gt + 1)
    assert len(fig.axes[0].collections) == 3
    with pytest.raises(ValueError, match="pred: expected shape"):
        viz.plot_landmarks(np.zeros((64, 64)), gt, gt[:10])


def test_magnified_difference_refs():
    clip = np.zeros((4, 5, 5), np.float32); clip[1:, 2, 2] = [0.01, 0.02, 0.03]
    np.testing.assert_allclose(viz.magnified_difference(clip, 3, gain=10)[2, 2], 0.3, rtol=1e-5)
    np.testing.assert_allclose(viz.magnified_difference(clip, 3, ref="previous", gain=10)[2, 2], 0.1, rtol=1e-4)
    with pytest.raises(ValueError, match="k must be in"):
        viz.magnified_difference(clip, -1)


def test_overlay_heatmap_and_panel_png():
    rng = np.random.default_rng(1)
    frames = rng.uniform(size=(4, 16, 16)).astype(np.float32)
    ov = viz.overlay_heatmap(frames[0], rng.uniform(size=(16, 16)))
    assert ov.shape == (16, 16, 3) and 0 <= ov.min() and ov.max() <= 1
    flow = rng.normal(size=(3, 2, 16, 16)).astype(np.float32)
    png0 = viz.figure_to_png(viz.clip_panel(frames, 0, flow, flow))
    png1 = viz.figure_to_png(viz.clip_panel(frames, 1, flow, flow))
    assert png0[:4] == b"\x89PNG" and png0 != png1
