"""The architecture figure is drawn from a real forward pass: its shapes, parts and wiring follow the model."""
import copy

import pytest
import torch

from mol_edu.architecture import (architecture_edges, architecture_table, compact_png, draw_architecture, shape_str,
                                  trace_architecture)
from mol_edu.model import MOL, MOLConfig

torch.set_num_threads(1)


def _model(**overrides):
    torch.manual_seed(0)
    return MOL(MOLConfig.preset("small", **overrides)).eval()


@pytest.fixture(scope="module")
def small():
    m = _model()
    clip = torch.rand(1, 1, 8, 64, 64)
    return m, clip, trace_architecture(m, clip)


def _by_name(trace):
    return {r.name: r for r in trace}


@pytest.mark.parametrize("size,batch", [(64, 1), (128, 2)])
def test_shapes_are_those_of_a_real_forward_pass(size, batch):
    m = _model(image_size=size)
    cfg = m.cfg
    clip = torch.rand(batch, 1, cfg.frames, size, size)
    with torch.no_grad(): out = m(clip)
    rec = _by_name(trace_architecture(m, clip))
    B, T, P, C, S = batch, cfg.frames, cfg.pairs, cfg.channels, cfg.feature_size
    assert rec["clip"].output == tuple(clip.shape)
    assert rec["stem"].inputs == [(B * T, 1, size, size)] and rec["stem"].output == (B * T, C, S, S)
    for block in ("f5c1", "f5c2", "f5c1.fcc", "f5c1.ccc", "f5c2.fcc", "f5c2.ccc"):
        assert rec[block].inputs == [(B * P, C, S, S)] and rec[block].output == (B * P, C, S, S)
    assert rec["flow_head"].inputs == [(B, T, 1, size, size), (B, P, C, S, S), (B, P, C, S, S)]
    assert rec["flow_head"].output == tuple(out.flow.shape)
    assert rec["flow_head.correlation"].output == (B * P, cfg.corr_patch ** 2, S, S)
    assert rec["expression_head"].inputs == [(B, 2 * P, C, S, S)]
    assert rec["expression_head"].output == tuple(out.logits.shape)
    assert rec["landmark_head"].output == (B * P, cfg.landmarks, 2)
    assert rec["joint_loss"].inputs == [tuple(out.logits.shape), tuple(out.flow.shape), tuple(out.landmarks.shape)]
    assert rec["joint_loss"].output == ()


def test_another_input_size_gives_other_shapes():
    a = _by_name(trace_architecture(_model(), torch.rand(1, 1, 8, 64, 64)))
    b = _by_name(trace_architecture(_model(image_size=128), torch.rand(1, 1, 8, 128, 128)))
    assert a["stem"].output != b["stem"].output and a["flow_head"].output != b["flow_head"].output


def test_every_top_level_part_appears_with_its_parameters(small):
    m, _, trace = small
    rec = _by_name(trace)
    for name, child in m.named_children():
        assert name in rec and rec[name].kind == type(child).__name__ and rec[name].calls == 1
        assert rec[name].params == sum(p.numel() for p in child.parameters())
    assert sum(r.params for r in trace if not r.parent) == sum(p.numel() for p in m.parameters())
    assert [r.name for r in trace][0] == "clip" and trace[-1].name == "joint_loss"


def test_wiring_comes_from_the_autograd_graph(small):
    rec = _by_name(small[2])
    assert rec["stem"].sources == [["clip"]]
    assert rec["f5c1"].sources == rec["f5c2"].sources == [["stem"]]
    assert rec["f5c1.ccc"].sources == [["f5c1.fcc"]]
    assert rec["flow_head"].sources == [["clip"], ["f5c1"], ["f5c2"]]
    assert rec["landmark_head"].sources == [["f5c2"]]
    assert rec["expression_head"].sources == [["f5c1", "f5c2"]]
    assert rec["joint_loss"].sources == [["expression_head"], ["flow_head"], ["landmark_head"]]
    assert ("f5c2", "landmark_head", (7, 32, 8, 8)) in architecture_edges(small[2])


def test_tracing_leaves_the_model_as_it_was(small):
    m, clip, _ = small
    m.train()
    trace_architecture(m, clip)
    assert m.training and all(not mod._forward_hooks and not mod._forward_pre_hooks for mod in m.modules())
    m.eval()


def test_a_renamed_head_shows_up_under_its_new_name(small):
    m, clip, trace = small
    renamed = copy.deepcopy(m)
    renamed.add_module("points", renamed.landmark_head)
    del renamed.landmark_head
    renamed.__dict__["landmark_head"] = renamed.points        # forward still finds it; the module tree calls it "points"
    rec = _by_name(trace_architecture(renamed, clip))
    assert "landmark_head" not in rec and rec["points"].sources == [["f5c2"]]
    assert rec["joint_loss"].sources[2] == ["points"]
    assert [r.name for r in trace] != list(rec)


def test_a_removed_head_is_missing_from_trace_and_figure(small):
    m, clip, _ = small
    removed = copy.deepcopy(m)
    del removed.landmark_head
    removed.__dict__["landmark_head"] = lambda g: torch.zeros(g.shape[0], 136)   # no module, no parameters
    trace = trace_architecture(removed, clip)
    rec = _by_name(trace)
    assert "landmark_head" not in rec and rec["joint_loss"].sources[2] == []
    boxes = {p.get_gid() for p in draw_architecture(trace).axes[0].patches if (p.get_gid() or "").startswith("box:")}
    assert "box:landmark_head" not in boxes and "box:flow_head" in boxes


def test_an_unused_part_is_kept_with_no_calls(small):
    m, clip, _ = small
    extra = copy.deepcopy(m)
    extra.spare = torch.nn.Linear(4, 4)
    rec = _by_name(trace_architecture(extra, clip))
    assert rec["spare"].calls == 0 and rec["spare"].output is None and rec["spare"].params == 20
    assert "never called" in architecture_table(list(rec.values()))


def _texts(fig, prefix):
    return {t.get_gid()[len(prefix):]: t for t in fig.axes[0].texts if (t.get_gid() or "").startswith(prefix)}


def test_figure_boxes_arrows_and_labels(small):
    _, _, trace = small
    fig = draw_architecture(trace)
    assert fig.dpi >= 150
    ax, r = fig.axes[0], fig.canvas.get_renderer()
    boxes = {p.get_gid()[4:]: p.get_window_extent(r) for p in ax.patches if (p.get_gid() or "").startswith("box:")}
    assert set(boxes) == {rec.name for rec in trace}
    for prefix in ("name:", "text:"):
        for name, t in _texts(fig, prefix).items():
            e, b = t.get_window_extent(r), boxes[name]
            assert b.x0 <= e.x0 and e.x1 <= b.x1 and b.y0 <= e.y0 and e.y1 <= b.y1, f"{prefix}{name} spills over"
    labels = _texts(fig, "shape:")
    drawn = {f"{s}->{d}": shape for s, d, shape in architecture_edges(trace)
             if s.rpartition(".")[0] == d.rpartition(".")[0]}
    assert set(labels) == set(drawn) and all(labels[k].get_text() == shape_str(v) for k, v in drawn.items())
    side = [t.get_window_extent(r) for k, t in labels.items() if "." not in k and not k.startswith("clip->flow")]
    assert not any(a.overlaps(b) for i, a in enumerate(side) for b in side[i + 1:]), "shape labels overlap"


def test_compact_png_is_a_small_png(small):
    png = compact_png(draw_architecture(small[2]))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 150_000


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="clip: expected a tensor"): trace_architecture(_model(), [[0.0]])
    with pytest.raises(ValueError, match="trace: expected at least one record"): draw_architecture([])
