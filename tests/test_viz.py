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
    assert len(fig.axes[0].collections) == 3                               # true, predicted, the short error lines
    assert len(fig.axes[0].collections[2].get_segments()) == 68
    with pytest.raises(ValueError, match="pred: expected shape"):
        viz.plot_landmarks(np.zeros((64, 64)), gt, gt[:10])


def test_far_predictions_are_not_joined_and_off_frame_ones_are_pinned():
    from matplotlib.collections import LineCollection
    gt = np.random.default_rng(0).uniform(20, 44, (68, 2)).astype(np.float32)
    corner = np.zeros_like(gt)                                             # an untrained head: every point at (0, 0)
    ax = viz.plot_landmarks(np.zeros((64, 64)), gt, corner).axes[0]
    assert not any(isinstance(c, LineCollection) for c in ax.collections)  # no 68 lines from the corner
    mixed = np.ones_like(gt); mixed[:10] = gt[:10] + 0.5; mixed[10:20] = [200, -50]   # ten near, ten off, the rest far
    ax = viz.plot_landmarks(np.zeros((64, 64)), gt, mixed).axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 10
    pinned = ax.collections[2].get_offsets()
    assert len(pinned) == 10 and np.allclose(pinned, [63.5, -0.5])       # on the frame's top-right corner
    assert ax.get_xlim() == (-0.5, 63.5)


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


def test_png_has_twice_the_layout_pixels_and_a_css_width():
    fig = viz.new_figure(5, 2)
    fig.subplots().plot([0, 1])
    png = viz.figure_to_png(fig)
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (w, h) == (5 * viz.RENDER_DPI, 2 * viz.RENDER_DPI) and viz.RENDER_DPI >= 2 * 90
    assert viz.display_width(fig) == f"{5 * viz.SCREEN_DPI}px"


def test_titles_overflow_finds_cut_off_titles():
    fig = viz.new_figure(4, 1.5)
    axs = fig.subplots(1, 3)
    axs[0].set_title("ok", fontsize=viz.FONT)
    axs[1].set_title("20 difference, frame 6 (apex) - onset", fontsize=viz.FONT)
    assert viz.titles_overflow(fig) == ["20 difference, frame 6 (apex) - onset"]
    fig.suptitle("a suptitle " * 20, fontsize=viz.FONT)
    assert len(viz.titles_overflow(fig)) == 2


def test_clip_panel_shares_the_true_flows_scale_and_its_titles_fit():
    rng = np.random.default_rng(2)
    frames = rng.uniform(size=(4, 32, 32)).astype(np.float32)
    gt = np.zeros((3, 2, 32, 32), np.float32); gt[:, 0, 10:20, 10:20] = 0.4
    wild = rng.normal(scale=5, size=gt.shape).astype(np.float32)          # an untrained model's flow
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.repeat(np.stack([16 + 8 * np.cos(t), 16 + 8 * np.sin(t)], 1)[None], 4, 0)
    fig = viz.clip_panel(frames, 1, gt, wild, lm, np.zeros((3, 68, 2)))
    assert "0.40 px" in fig.axes[1].get_title() and "0.40 px" in fig.axes[2].get_title()
    pred_rgb = fig.axes[2].get_images()[0].get_array()
    np.testing.assert_allclose(pred_rgb, viz.flow_to_color(wild[1], max_norm=0.4), atol=1e-6)
    assert viz.titles_overflow(fig) == []


def test_heat_scale_and_colorbar():
    heat = np.ones((3, 16, 16)); heat[0, 0, 0] = 1e4
    assert viz.heat_scale(heat) == 1.0 and viz.heat_scale(heat, q=100) == 1e4
    fig = viz.new_figure(3, 2)
    ax = fig.subplots()
    ax.imshow(viz.overlay_heatmap(np.zeros((16, 16)), heat[0], vmax=1.0))
    cb = viz.add_heat_colorbar(fig, ax, 1.0)
    assert cb.mappable.norm.vmax == 1.0 and len(fig.axes) == 2


def test_wheel_key_is_the_wheel():
    k = viz.wheel_key(21)
    assert k.shape == (21, 21, 4) and k[0, 0, 3] == 0 and k[10, 10, 3] == 1
    np.testing.assert_allclose(k[10, 10, :3], 1.0, atol=0.1)              # the still centre is (nearly) white
    up = np.zeros((2, 1, 1)); up[1] = -1
    np.testing.assert_allclose(k[0, 10, :3], viz.flow_to_color(up)[0, 0], atol=1e-5)   # the top is upward motion
