"""MOL against the released forward: a random state dict in the released format goes through the spec-written oracle
(tests/released_oracle.py: per-pair loop, stem per pair, per-node CCC, time-last 3D CNN) and, converted, through
`MOL`; in eval mode all three outputs must agree to 1e-4 of their scale."""
import pickle
from dataclasses import dataclass

import pytest
import torch

from mol_edu.model import MOL, MOLConfig, MOLOutput
from mol_edu.released import convert_released_state_dict, load_released, released_key_shapes
import released_oracle as oracle

torch.set_num_threads(min(2, torch.get_num_threads()))


def dims_of(cfg: MOLConfig) -> oracle.ReleasedDims:
    return oracle.ReleasedDims(classes=cfg.classes, channels=cfg.channels, meta_len=cfg.meta_len, size=cfg.feature_size,
                               k=cfg.k, flow_width=cfg.flow_width, corr_patch=cfg.corr_patch,
                               corr_dilation=cfg.corr_dilation, landmarks=cfg.landmarks,
                               landmark_hidden=cfg.landmark_hidden, expression_hidden=cfg.expression_hidden,
                               pairs=cfg.pairs)


def released_sd(cfg, seed=0):
    return oracle.random_released_state_dict(oracle.released_shapes(dims_of(cfg)), seed=seed)


def run_oracle(sd, cfg, clip):
    return oracle.released_forward(sd, clip, k=cfg.k, corr_patch=cfg.corr_patch, corr_dilation=cfg.corr_dilation)


def assert_same_scale(ours, ref, name, rel=1e-4):
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} vs released {tuple(ref.shape)}"
    scale = float(ref.abs().max())
    err = float((ours - ref).abs().max())
    assert scale > 0 and err <= rel * scale, f"{name}: max error {err:.3g} > {rel} x scale {scale:.3g}"


def compare(out: MOLOutput, ref):
    logits, flow, landmarks = out.to_released()
    assert_same_scale(logits, ref[0], "logits")
    assert_same_scale(flow, ref[1], "flow")
    assert_same_scale(landmarks, ref[2], "landmarks")


# ---------------------------------------------------------------- the checkpoint format
def test_released_key_shapes_equal_the_official_list():
    official = oracle.read_official_shapes()
    assert oracle.released_shapes(oracle.ReleasedDims()) == official      # the oracle's own derivation
    assert released_key_shapes(MOLConfig()) == official                    # the library's
    assert list(released_key_shapes(MOLConfig())) == list(official)


def test_released_key_shapes_small_agree_with_oracle():
    small = MOLConfig.preset("small")
    assert released_key_shapes(small) == oracle.released_shapes(dims_of(small))


def test_converted_official_state_dict_loads_strictly_and_drops_ffn():
    sd = oracle.random_released_state_dict(oracle.read_official_shapes(), seed=1)
    conv = convert_released_state_dict(sd)
    assert not any("ffn" in k for k in conv)
    n_ffn = sum(1 for k in sd if ".ffn." in k)
    assert n_ffn == 18 and len(conv) == len(sd) - n_ffn
    model = MOL(MOLConfig())
    model.load_state_dict(conv, strict=True)
    torch.testing.assert_close(model.f5c2.ccc.edge_linear.weight, sd["CCC_2.conv2.weight"][:, 0, :], rtol=0, atol=0)
    torch.testing.assert_close(model.f5c1.fcc.kernel2_w, sd["FCC_1.meta_kernel_2_W"], rtol=0, atol=0)
    torch.testing.assert_close(model.f5c1.fcc.norm2.running_var, sd["FCC_1.pre_Norm_2.running_var"], rtol=0, atol=0)


# ---------------------------------------------------------------- parity (small preset, batch 2)
@pytest.fixture(scope="module")
def small_case():
    cfg = MOLConfig.preset("small")
    sd = released_sd(cfg, seed=3)
    torch.manual_seed(3)
    clip = torch.rand(2, 1, cfg.frames, cfg.image_size, cfg.image_size)
    return cfg, sd, clip, run_oracle(sd, cfg, clip)


def test_parity_small_preset(small_case):
    cfg, sd, clip, ref = small_case
    model = MOL(cfg)
    model.load_state_dict(convert_released_state_dict(sd, cfg), strict=True)
    with torch.no_grad(): compare(model.eval()(clip), ref)


def test_parity_small_detects_a_wrong_weight(small_case):
    "The comparison can fail: perturb one converted weight and the outputs no longer agree."
    cfg, sd, clip, ref = small_case
    conv = convert_released_state_dict(sd, cfg)
    conv["f5c2.ccc.edge_linear.bias"] = conv["f5c2.ccc.edge_linear.bias"] + 0.05
    model = MOL(cfg); model.load_state_dict(conv, strict=True)
    with torch.no_grad(), pytest.raises(AssertionError):
        compare(model.eval()(clip), ref)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_parity_from_file(small_case, tmp_path, suffix):
    cfg, sd, clip, ref = small_case
    path = tmp_path / f"released{suffix}"
    if suffix == ".pt": torch.save(sd, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    with torch.no_grad(): compare(load_released(path, cfg)(clip), ref)
    model = MOL(cfg); model.load_state_dict(convert_released_state_dict(str(path), cfg), strict=True)


def test_wrapped_and_dataparallel_checkpoints(small_case, tmp_path):
    cfg, sd, clip, ref = small_case
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    with torch.no_grad(): compare(load_released(path, cfg)(clip), ref)


@dataclass
class _NotATensor:
    x: int = 1


def test_file_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"conv_stack.conv_stack.0.weight": torch.zeros(1), "payload": _NotATensor()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        convert_released_state_dict(path)


def test_conversion_errors_name_the_key():
    cfg = MOLConfig.preset("small")
    sd = released_sd(cfg)
    with pytest.raises(ValueError, match=r"missing key in released state dict: 'flownet.conv4.1.running_var'"):
        convert_released_state_dict({k: v for k, v in sd.items() if k != "flownet.conv4.1.running_var"}, cfg)
    with pytest.raises(ValueError, match=r"unexpected key in released state dict: 'mer_3dcnn.fc3.weight'"):
        convert_released_state_dict({**sd, "mer_3dcnn.fc3.weight": torch.zeros(2)}, cfg)
    with pytest.raises(ValueError, match=r"shape mismatch for 'ldm_predictor.fc1.weight'"):
        convert_released_state_dict({**sd, "ldm_predictor.fc1.weight": torch.zeros(3, 3)}, cfg)
    with pytest.raises(FileNotFoundError): convert_released_state_dict("/nonexistent/mol.pth", cfg)
    ffn_free = {k: v for k, v in sd.items() if ".ffn." not in k}     # the FFN is optional: it is dropped anyway
    assert convert_released_state_dict(ffn_free, cfg).keys() == convert_released_state_dict(sd, cfg).keys()


def test_bad_clip_shapes():
    cfg = MOLConfig.preset("small")
    model = MOL(cfg).eval()
    with pytest.raises(ValueError, match=r"clip: expected shape \(B, 1, T=8, H=64, W=64\), got \(1, 1, 8, 32, 32\)"):
        model(torch.zeros(1, 1, 8, 32, 32))
    with pytest.raises(ValueError, match=r"got \(1, 8, 64, 64\)"):
        model(torch.zeros(1, 8, 64, 64))


def test_paper_reading_model_runs():
    cfg = MOLConfig.preset("small", ccc_reading="paper")
    out = MOL(cfg).eval()(torch.rand(1, 1, 8, 64, 64))
    assert out.logits.shape == (1, 5) and out.flow.shape == (1, 7, 2, 64, 64) and out.landmarks.shape == (1, 7, 68, 2)
    with pytest.raises(ValueError, match="ccc_reading='released'"):
        convert_released_state_dict(released_sd(MOLConfig.preset("small")), cfg)


# ---------------------------------------------------------------- parity at the released size (batch 1)
def test_parity_released_config():
    "The released default configuration, 128x128 x 8 frames, batch 1: the full-size proof (about a minute on 2 cores)."
    cfg = MOLConfig()
    sd = oracle.random_released_state_dict(oracle.read_official_shapes(), seed=7)
    torch.manual_seed(7)
    clip = torch.rand(1, 1, 8, 128, 128)
    ref = run_oracle(sd, cfg, clip)
    model = MOL(cfg)
    model.load_state_dict(convert_released_state_dict(sd), strict=True)
    with torch.no_grad(): compare(model.eval()(clip), ref)


# ---------------------------------------------------------------- training mode (fidelity ledger M6, M7)
def test_training_step_pools_batchnorm_and_reaches_every_parameter():
    "One train-mode forward updates every BatchNorm once (the release: 7 or 14 times); every parameter gets a gradient."
    torch.manual_seed(0)
    model = MOL(MOLConfig.preset("small")).train()
    out = model(torch.rand(2, 1, 8, 64, 64))
    (out.logits.sum() + out.flow.square().mean() + out.landmarks.abs().mean()).backward()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and {int(m.num_batches_tracked) for m in bns} == {1}
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_stem_runs_once_per_frame_and_blocks_once_per_call():
    model = MOL(MOLConfig.preset("small")).eval()
    seen = {}
    for name in ("stem", "f5c1", "f5c2"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, []).append(i[0].shape[0]))
    with torch.no_grad(): model(torch.rand(3, 1, 8, 64, 64))
    assert seen == {"stem": [24], "f5c1": [21], "f5c2": [21]}
