"""The expression head's optional temporal normalisation (`mer_norm="temporal"`, fidelity ledger row T1): it matches
its definition, removes anything static within a clip, adds no parameters, and is off in every released preset."""
import pytest
import torch

from mol_edu.heads import ExpressionHead, MER_NORMS, temporal_normalise
from mol_edu.model import MOL, MOLConfig
from mol_edu.released import released_key_shapes

torch.set_num_threads(min(2, torch.get_num_threads()))


def by_definition(g, eps=1e-6):
    "Written from the ledger's formula, one clip, channel and block at a time."
    B, S2, C, h, w = g.shape
    out = torch.zeros_like(g)
    for b in range(B):
        for c in range(C):
            first, second = g[b, 0::2, c], g[b, 1::2, c]             # F5C1(I_t), F5C2(I_t+1), t = 1..P
            first, second = first - first.mean(0), second - second.mean(0)
            rms = (torch.cat([first, second]) ** 2).mean().sqrt()
            out[b, 0::2, c], out[b, 1::2, c] = first / (rms + eps), second / (rms + eps)
    return out


def test_matches_the_definition():
    g = torch.randn(2, 14, 8, 4, 4) + 3 * torch.randn(1, 1, 8, 4, 4)
    torch.testing.assert_close(temporal_normalise(g), by_definition(g), rtol=1e-5, atol=1e-5)


def test_static_parts_are_removed_per_block():
    g = torch.randn(3, 14, 16, 8, 8)
    offset = torch.zeros(3, 14, 16, 8, 8)
    offset[:, 0::2] = 50 * torch.randn(3, 1, 16, 8, 8)   # block 1 and block 2 get different static maps
    offset[:, 1::2] = -80 * torch.randn(3, 1, 16, 8, 8)
    torch.testing.assert_close(temporal_normalise(g + offset), temporal_normalise(g), rtol=1e-3, atol=1e-3)
    # and a clip's scale does not matter
    torch.testing.assert_close(temporal_normalise(7 * g), temporal_normalise(g), rtol=1e-4, atol=1e-4)


def test_head_option_adds_no_parameters_and_is_applied():
    torch.manual_seed(0); plain = ExpressionHead(16, 8, classes=3).eval()
    torch.manual_seed(0); normed = ExpressionHead(16, 8, classes=3, norm="temporal").eval()
    assert plain.state_dict().keys() == normed.state_dict().keys()
    g = torch.randn(2, 14, 16, 8, 8)
    torch.testing.assert_close(normed(g), plain(temporal_normalise(g)))
    assert not torch.allclose(normed(g), plain(g))
    with pytest.raises(ValueError, match="norm: expected one of"): ExpressionHead(norm="batch")


def test_released_presets_keep_the_released_head():
    assert MER_NORMS[0] == "none"
    for name in ("released", "small"): assert MOLConfig.preset(name).mer_norm == "none"
    assert released_key_shapes(MOLConfig(mer_norm="temporal")) == released_key_shapes(MOLConfig())
    with pytest.raises(ValueError, match="mer_norm must be one of"): MOLConfig(mer_norm="layer")


def test_model_logits_ignore_a_static_feature_offset():
    "With the option on, a constant added to every F5C map of a clip leaves the logits unchanged."
    torch.manual_seed(0)
    model = MOL(MOLConfig.preset("small", channels=16, flow_width=4, mer_norm="temporal")).eval()
    clip = torch.rand(2, 1, 8, 64, 64) * 2 - 1
    seen = {}
    def add_offset(module, args):
        seen["g"] = args[0]
        return (args[0] + 25.0 * torch.randn(1, 1, *args[0].shape[2:]),)
    with torch.no_grad():
        base = model(clip).logits
        h = model.expression_head.register_forward_pre_hook(add_offset)
        shifted = model(clip).logits
        h.remove()
    torch.testing.assert_close(shifted, base, rtol=1e-3, atol=1e-3)
    assert seen["g"].shape == (2, 14, 16, 8, 8)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="even number >= 4 of maps"): temporal_normalise(torch.randn(2, 2, 4, 2, 2))
    with pytest.raises(ValueError, match="even number >= 4 of maps"): temporal_normalise(torch.randn(2, 13, 4, 2, 2))
    with pytest.raises(ValueError, match="g_seq: expected"): temporal_normalise(torch.randn(2, 14, 4, 2))
    with pytest.raises(ValueError, match="needs an even number"): ExpressionHead(steps=13, norm="temporal")
