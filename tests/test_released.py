"""The released-checkpoint format is derived, not typed: `released_key_shapes(cfg)` follows `MOL(cfg)` and the one rename
map (`mol_edu.released.RELEASED_PARTS`); and the model presets have one canonical name each ("paper" is a deprecated
alias of "released")."""
import warnings

import pytest
import torch

from mol_edu.model import MOL, MOL_PRESET_ALIASES, MOL_PRESETS, MOLConfig
from mol_edu.released import (RELEASED_UNUSED_PREFIXES, ours_to_released, released_ffn, released_key_shapes,
                              released_to_ours)

torch.set_num_threads(min(2, torch.get_num_threads()))


# ---------------------------------------------------------------- presets
def test_presets_hold_only_canonical_names():
    assert list(MOL_PRESETS) == ["released", "small"]
    assert MOLConfig.preset("released") == MOLConfig()
    assert not set(MOL_PRESET_ALIASES) & set(MOL_PRESETS)
    with pytest.raises(ValueError, match=r"preset: expected one of \['released', 'small'\], got 'paper-ish'"):
        MOLConfig.preset("paper-ish")


def test_paper_preset_still_works_and_says_to_use_released():
    with pytest.warns(DeprecationWarning, match=r"MOLConfig.preset\('paper'\) is deprecated: use MOLConfig.preset\('released'\)"):
        cfg = MOLConfig.preset("paper", classes=3)
    assert cfg == MOLConfig.preset("released", classes=3)
    assert cfg.ccc_reading == "released"          # the preset is the release's sizes, not the paper's CCC reading


def test_canonical_presets_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in MOL_PRESETS: MOLConfig.preset(name)


# ---------------------------------------------------------------- the derived format
def test_rename_map_works_both_ways_for_every_key():
    for cfg in (MOLConfig.preset("small"), MOLConfig.preset("small", channels=64, k=2)):
        ours = list(MOL(cfg).state_dict())
        released = [ours_to_released(k) for k in ours]
        assert len(set(released)) == len(ours)                       # no two of our keys share a released name
        assert [released_to_ours(k) for k in released] == ours
    assert released_to_ours("FCC_2.ffn.4.bias") is None


def test_key_list_is_the_model_plus_the_unused_feed_forward():
    cfg = MOLConfig.preset("small")
    shapes = released_key_shapes(cfg)
    ours = MOL(cfg).state_dict()
    ffn = [k for k in shapes if k.startswith(RELEASED_UNUSED_PREFIXES)]
    assert len(ffn) == 2 * len(released_ffn(cfg.channels).state_dict())
    assert sorted(released_to_ours(k) for k in shapes if k not in ffn) == sorted(ours)
    for k, shape in shapes.items():                                   # same numbers: same element count
        if k not in ffn: assert torch.Size(shape).numel() == ours[released_to_ours(k)].numel(), k


@pytest.mark.parametrize("field, value, key, axis", [
    ("landmark_hidden", 300, "ldm_predictor.fc1.weight", 0),
    ("expression_hidden", 40, "mer_3dcnn.fc2.weight", 1),
    ("classes", 3, "mer_3dcnn.fc2.bias", 0),
    ("flow_width", 32, "flownet.conv1.0.weight", 0),
    ("corr_patch", 5, "flownet.conv3_1.0.weight", 1),
    ("meta_len", 48, "FCC_1.meta_pe_2_H", 2),
])
def test_a_changed_size_changes_the_format(field, value, key, axis):
    "Nothing in the format is typed: change one field and the released shapes that depend on it follow the model."
    cfg = MOLConfig(**{field: value})
    before, after = released_key_shapes(), released_key_shapes(cfg)
    assert list(before) == list(after)
    assert after[key][axis] != before[key][axis]
    assert {k for k in before if before[k] != after[k]} >= {key}


def test_deriving_the_format_leaves_the_random_stream_alone():
    torch.manual_seed(0); a = torch.rand(4)
    torch.manual_seed(0); released_key_shapes(MOLConfig(classes=7)); b = torch.rand(4)
    assert torch.equal(a, b)


def test_key_shapes_are_a_fresh_dict_every_call():
    shapes = released_key_shapes()
    shapes["extra"] = (1,)
    assert "extra" not in released_key_shapes()
