"""Local correlation and the three heads against oracles written from the spec (MOL.md sections 3-5, 9, 10).

The oracles here work on a *released-format* state dict (keys and layouts of official_state_dict_keys.txt) and do what
the release does: one pair at a time, both frames through the flow encoder for every pair, the correlation as a loop
over displacements, `conv_transpose2d` for the transposed convolutions, the MER head's 3D conv on a time-last stack,
and the release's output formats (flow (B, 2, H, W, P), landmarks (B, 136, P)).
"""
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mol_edu.correlation import (LocalCorrelation, correlation_by_matmul, correlation_by_shifts, correlation_index)
from mol_edu.heads import ExpressionHead, FlowHead, FlowPredictor, LandmarkHead, deconv2x, deconv_as_conv_weight
from mol_edu.released import convert_released_heads

SPEC_KEYS = Path("/work/shared/spec/official_state_dict_keys.txt")
LOCAL_KEYS = Path(__file__).with_name("released_state_dict_keys.txt")
HEAD_PREFIXES = ("flownet.", "ldm_predictor.", "mer_3dcnn.")


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


# ------------------------------------------------------------------ correlation oracles
def corr_pixel_loops(f1, f2, P, d):
    "The equation, literally: loops over displacements and pixels."
    N, C, H, W = f1.shape
    r = P // 2
    out = torch.zeros(N, P * P, H, W, dtype=f1.dtype)
    for i in range(P):
        for j in range(P):
            for y in range(H):
                for x in range(W):
                    y2, x2 = y + d * (i - r), x + d * (j - r)
                    if 0 <= y2 < H and 0 <= x2 < W:
                        out[:, P * i + j, y, x] = (f1[:, :, y, x] * f2[:, :, y2, x2]).sum(1) / C
    return out


def corr_displacement_loop(a, b, P, d):
    "Vectorised over pixels, a loop over displacements with torch.roll and a validity mask (different from the library)."
    N, C, H, W = a.shape
    r = P // 2
    ys = torch.arange(H).view(H, 1)
    xs = torch.arange(W).view(1, W)
    out = []
    for i in range(P):
        for j in range(P):
            dy, dx = d * (i - r), d * (j - r)
            rolled = torch.roll(b, shifts=(-dy, -dx), dims=(2, 3))  # rolled[y, x] = b[y + dy, x + dx] (mod size)
            ok = ((ys + dy >= 0) & (ys + dy < H) & (xs + dx >= 0) & (xs + dx < W)).to(a.dtype)
            out.append((a * rolled).sum(1) * ok)
    return torch.stack(out, 1) / C


@pytest.mark.parametrize("P,d,size", [(3, 1, (5, 6)), (5, 2, (7, 8)), (9, 2, (6, 5)), (1, 1, (4, 4))])
def test_correlation_matches_pixel_loops(P, d, size):
    g = torch.Generator().manual_seed(P * 10 + d)
    a, b = torch.randn(2, 3, *size, generator=g), torch.randn(2, 3, *size, generator=g)
    ref = corr_pixel_loops(a, b, P, d)
    for method in ("matmul", "shift", "auto"):
        torch.testing.assert_close(LocalCorrelation(P, d, method=method)(a, b), ref, rtol=1e-5, atol=1e-6)


def test_correlation_paper_sizes_value_and_gradient():
    "P=21, d=2, 256 channels, 16x16: Gram-matrix form == independent displacement loop, forward and backward."
    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(3, 256, 16, 16, generator=g, requires_grad=True)
    f2 = torch.randn(3, 256, 16, 16, generator=g, requires_grad=True)
    w = torch.randn(3, 441, 16, 16, generator=g)
    corr = LocalCorrelation()
    assert corr.out_channels == 441 and corr.max_displacement == 20 and corr.choose_method(16, 16) == "matmul"
    out = corr(f1, f2)
    ref = corr_displacement_loop(f1, f2, 21, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    ga = torch.autograd.grad((out * w).sum(), (f1, f2))
    gr = torch.autograd.grad((ref * w).sum(), (f1, f2))
    for x, y in zip(ga, gr): torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
    # channels whose displacement (> 15 px on a 16x16 map) never lands inside are exactly zero
    live = (out.detach().abs().sum((0, 2, 3)) > 0).view(21, 21)
    assert live.sum().item() == 15 * 15
    assert live[2:19, 2:19].sum().item() == 15 * 15 and not live[0].any() and not live[:, 20].any()


def test_correlation_known_shift_peaks_at_true_displacement():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1, 32, 40, 40, generator=g)
    for uy, ux in [(4, -6), (-2, 8), (0, 0)]:
        f1 = base[:, :, 12:28, 12:28]
        f2 = base[:, :, 12 - uy:28 - uy, 12 - ux:28 - ux]
        vol = LocalCorrelation(21, 2)(f1, f2)[0]
        best = vol.argmax(0)[max(0, -uy):16 - max(0, uy), max(0, -ux):16 - max(0, ux)]  # partner inside the map
        assert best.numel() > 0 and (best == 21 * (10 + uy // 2) + (10 + ux // 2)).all()


def test_correlation_bad_inputs():
    with pytest.raises(ValueError, match="patch_size must be a positive odd"): LocalCorrelation(20)
    with pytest.raises(ValueError, match="dilation must be"): LocalCorrelation(21, 0)
    with pytest.raises(ValueError, match="method must be one of"): LocalCorrelation(method="fft")
    with pytest.raises(ValueError, match="f2: expected shape"): LocalCorrelation()(torch.zeros(1, 4, 8, 8), torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="f1: expected shape"): LocalCorrelation()(torch.zeros(4, 8, 8), torch.zeros(4, 8, 8))


def test_correlation_index_points_to_zero_column_outside():
    idx = correlation_index(4, 4, 3, 2)
    assert idx.shape == (9 * 16,) and idx.max().item() < 16 * 17
    # pixel (0, 0), displacement (-2, -2) is outside -> the zero column (16) of row 0
    assert idx[0].item() == 16


# ------------------------------------------------------------------ transposed conv as conv + pixel_shuffle
@pytest.mark.parametrize("c_in,c_out,h,w", [(5, 3, 6, 7), (2, 2, 1, 1), (16, 8, 4, 4)])
def test_deconv_as_conv_equals_conv_transpose(c_in, c_out, h, w):
    g = torch.Generator().manual_seed(c_in)
    x = torch.randn(2, c_in, h, w, generator=g, requires_grad=True)
    wt = torch.randn(c_in, c_out, 4, 4, generator=g, requires_grad=True)
    fast, plain = deconv2x(x, wt, as_conv=True), F.conv_transpose2d(x, wt, None, 2, 1)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    up = torch.randn(plain.shape, generator=g)
    gf = torch.autograd.grad((fast * up).sum(), (x, wt))
    gp = torch.autograd.grad((plain * up).sum(), (x, wt))
    for a, b in zip(gf, gp): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="4x4"): deconv_as_conv_weight(torch.zeros(2, 2, 3, 3))


# ------------------------------------------------------------------ flow predictors: matrix product + col2im
@pytest.mark.parametrize("sizes,h,w", [((1, 6, 2), 10, 12), ((35,), 16, 16), ((4, 3), 1, 1), ((7, 1, 2), 3, 9)])
def test_gemm_predictor_equals_conv2d_of_the_concatenation(sizes, h, w):
    g = torch.Generator().manual_seed(sum(sizes) + h)
    parts = [torch.randn(3, c, h, w, generator=g, requires_grad=True) for c in sizes]
    pred = FlowPredictor(sum(sizes), "gemm")
    ref = F.conv2d(torch.cat(parts, 1), pred.weight, None, 1, 1)
    out = pred(*parts)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    up = torch.randn(ref.shape, generator=g)
    got = torch.autograd.grad((out * up).sum(), [pred.weight, *parts])
    want = torch.autograd.grad((ref * up).sum(), [pred.weight, *parts])
    for a, b in zip(got, want): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_flow_head_predictor_methods_agree_in_value_and_every_gradient():
    torch.manual_seed(0)
    frames, g1 = torch.rand(2, 4, 1, 64, 64), torch.randn(2, 3, 16, 8, 8)
    head = tiny_head()
    assert head.predict_flow0.choose_method(frames) == "gemm" and isinstance(head.predict_flow0, nn.Conv2d)
    grads = {}
    for method in ("gemm", "conv"):
        head.use_predictor(method).zero_grad()
        out = head(frames, g1, g1)                                     # training mode: BatchNorm on the batch
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads[method] = (out.detach(), {n: p.grad.clone() for n, p in head.named_parameters()})
    torch.testing.assert_close(grads["gemm"][0], grads["conv"][0], rtol=1e-4, atol=1e-5)
    for n, gc in grads["conv"][1].items():
        torch.testing.assert_close(grads["gemm"][1][n], gc, rtol=1e-3, atol=1e-4 * gc.abs().max().item() + 1e-7, msg=n)
    with pytest.raises(ValueError, match="method must be one of"): head.use_predictor("winograd")
    assert head.predict_flow3.method == "conv"                        # a refused method changes nothing
    with pytest.raises(ValueError, match="35 channels in all|7 channels in all"):
        head.use_predictor("gemm").predict_flow0(frames[:, 0], frames[:, 0])


# ------------------------------------------------------------------ released-format state dicts
def released_head_shapes():
    path = SPEC_KEYS if SPEC_KEYS.exists() else LOCAL_KEYS
    shapes = {}
    for line in path.read_text().splitlines():
        if not line.strip(): continue
        key, shape = line.split(" ", 1)
        if key.startswith(HEAD_PREFIXES):
            shapes[key] = tuple(int(s) for s in shape.strip("() ").split(",") if s.strip())
    return shapes


def random_released(shapes, seed=0):
    "Random released-format tensors: fan-in scaled weights, BN statistics and affine far from identity."
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked": sd[key] = torch.tensor(7)
        elif leaf == "running_mean": sd[key] = 0.2 * torch.randn(shape, generator=g)
        elif leaf == "running_var": sd[key] = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) == 1 and key.startswith("flownet."):
            sd[key] = (0.5 + torch.rand(shape, generator=g)) if leaf == "weight" else 0.2 * torch.randn(shape, generator=g)
        elif leaf == "bias": sd[key] = 0.1 * torch.randn(shape, generator=g)
        else:
            transposed = ".deconv" in key or "upsampled_flow" in key
            fan_in = shape[0] * 4 if transposed else math.prod(shape[1:])  # 4 taps of a 4x4/s2 kernel reach each output
            sd[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    return sd


def _bn(sd, p, x):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"], False, 0.1, 1e-5)


def oracle_flow_pair(sd, im1, im2, g1, g2, P=21, d=2):
    "Released flow head (spec 3) on one pair -> flow0 (B, 2, H, W)."
    def cbl(name, x, stride, pad):
        return F.leaky_relu(_bn(sd, f"flownet.{name}.1", F.conv2d(x, sd[f"flownet.{name}.0.weight"], None, stride, pad)), 0.1)
    def encode(im):
        c1 = cbl("conv1", im, 2, 2); c2 = cbl("conv2", c1, 2, 1)
        return c1, c2, cbl("conv3", c2, 2, 0)
    c1a, c2a, c3a = encode(im1)
    _, _, c3b = encode(im2)
    corr = F.leaky_relu(corr_displacement_loop(c3a, c3b, P, d), 0.1)
    c3_1 = cbl("conv3_1", torch.cat([cbl("conv_redir", c3a, 1, 0), corr, g1, g2], 1), 1, 1)
    c4_1 = cbl("conv4_1", cbl("conv4", c3_1, 2, 1), 1, 1)
    c5_1 = cbl("conv5_1", cbl("conv5", c4_1, 2, 1), 1, 1)
    x = cbl("conv6_1", cbl("conv6", c5_1, 2, 1), 1, 1)
    for lvl, skip in ((6, c5_1), (5, c4_1), (4, c3_1), (3, c2a), (2, c1a), (1, im1)):
        pred = F.conv2d(x, sd[f"flownet.predict_flow{lvl}.weight"], None, 1, 1)
        up = F.conv_transpose2d(pred, sd[f"flownet.upsampled_flow{lvl}_to_{lvl - 1}.weight"], None, 2, 1)
        dec = F.leaky_relu(F.conv_transpose2d(x, sd[f"flownet.deconv{lvl - 1}.0.weight"], None, 2, 1), 0.1)
        x = torch.cat([skip, dec, up], 1)
    return F.conv2d(x, sd["flownet.predict_flow0.weight"], None, 1, 1)


def oracle_heads(sd, clip, gf, gs, P=21, d=2):
    "Released heads with a loop over pairs: clip (B,1,T,H,W) -> logits, flow (B,2,H,W,P), landmarks (B,136,P)."
    flows, ldms, seq = [], [], []
    for k in range(clip.shape[2] - 1):
        flows.append(oracle_flow_pair(sd, clip[:, :, k], clip[:, :, k + 1], gf[:, k], gs[:, k], P, d))
        x = F.relu(F.conv2d(gs[:, k], sd["ldm_predictor.convldm.weight"], sd["ldm_predictor.convldm.bias"]))
        x = F.relu(F.linear(x.flatten(1), sd["ldm_predictor.fc1.weight"], sd["ldm_predictor.fc1.bias"]))
        ldms.append(F.linear(x, sd["ldm_predictor.fc2.weight"], sd["ldm_predictor.fc2.bias"]))
        seq += [gf[:, k], gs[:, k]]
    x = F.conv3d(torch.stack(seq, -1), sd["mer_3dcnn.conv3d.weight"], sd["mer_3dcnn.conv3d.bias"], stride=(2, 2, 1))
    x = F.relu(F.linear(F.max_pool3d(x, 2).flatten(1), sd["mer_3dcnn.fc1.weight"], sd["mer_3dcnn.fc1.bias"]))
    return F.linear(x, sd["mer_3dcnn.fc2.weight"], sd["mer_3dcnn.fc2.bias"]), torch.stack(flows, -1), torch.stack(ldms, -1)


def released_size_heads():
    return nn.ModuleDict(dict(flow_head=FlowHead(), landmark_head=LandmarkHead(), expression_head=ExpressionHead()))


def test_convert_released_heads_keys_and_shapes():
    shapes = released_head_shapes()
    assert len(shapes) == 66 + 6 + 7 + 6 + 6 + 6  # flownet (11 conv blocks x 6, deconvs, predictors, upsamplers), ldm, mer
    sd = random_released(shapes)
    ours = convert_released_heads(sd)
    assert len(ours) == len(sd)
    assert all(k.startswith(("flow_head.", "landmark_head.", "expression_head.")) for k in ours)
    heads = released_size_heads()
    missing, unexpected = heads.load_state_dict(ours, strict=True)
    assert not missing and not unexpected
    assert ours["expression_head.conv.weight"].shape == (32, 128, 5, 2, 2)
    # other keys of a full checkpoint are ignored
    assert convert_released_heads({"CCC_1.conv1.weight": torch.zeros(1)}) == {}
    n_flow = sum(p.numel() for p in heads["flow_head"].parameters())
    assert abs(n_flow / 1e6 - 39.7) < 0.05


def test_released_heads_parity_full_size():
    "Released widths, 128 px, T = 8, batch 1, eval mode: all three outputs within 1e-4 of their scale."
    torch.manual_seed(0)
    sd = random_released(released_head_shapes(), seed=1)
    heads = released_size_heads()
    heads.load_state_dict(convert_released_heads(sd), strict=True)
    heads.eval()
    g = torch.Generator().manual_seed(2)
    clip = torch.rand(1, 1, 8, 128, 128, generator=g)
    gf, gs = torch.randn(1, 7, 128, 16, 16, generator=g), torch.randn(1, 7, 128, 16, 16, generator=g)
    with torch.no_grad():
        ref_logits, ref_flow, ref_ldm = oracle_heads(sd, clip, gf, gs)
        flow = heads["flow_head"](clip.transpose(1, 2), gf, gs)
        ldm = heads["landmark_head"](gs.flatten(0, 1)).unflatten(0, (1, 7))
        logits = heads["expression_head"](torch.stack([gf, gs], 2).flatten(1, 2))
    assert flow.shape == (1, 7, 2, 128, 128) and ldm.shape == (1, 7, 68, 2) and logits.shape == (1, 5)
    assert rel_err(flow, ref_flow.permute(0, 4, 1, 2, 3)) < 1e-4
    assert rel_err(ldm, ref_ldm.permute(0, 2, 1).unflatten(2, (68, 2))) < 1e-4
    assert rel_err(logits, ref_logits) < 1e-4
    assert ref_flow.abs().max() > 1e-2  # the comparison is not between two near-zero tensors
    # transposed convolutions as 3x3 convs + pixel_shuffle give the same flow
    heads["flow_head"].deconv_as_conv = True
    with torch.no_grad(): flow_plain = heads["flow_head"](clip.transpose(1, 2), gf, gs)
    assert rel_err(flow_plain, flow) < 1e-5


def test_flow_head_matches_project_released_oracle():
    "Cross-check against the project's independent released-forward oracle (tests/released_oracle.py), 1 pair."
    import released_oracle  # tests/released_oracle.py
    sd = random_released(released_head_shapes(), seed=3)
    head = FlowHead()
    head.load_state_dict({k[len("flow_head."):]: v for k, v in convert_released_heads(sd).items()
                          if k.startswith("flow_head.")}, strict=True)
    head.eval()
    g = torch.Generator().manual_seed(4)
    frames = torch.rand(1, 2, 1, 128, 128, generator=g)
    g1, g2 = torch.randn(1, 1, 128, 16, 16, generator=g), torch.randn(1, 1, 128, 16, 16, generator=g)
    with torch.no_grad():
        ours = head(frames, g1, g2)[:, 0]
        ref = released_oracle.flownet(sd, frames[:, 0], frames[:, 1], g1[:, 0], g2[:, 0], 21, 2)
    assert rel_err(ours, ref) < 1e-4


def tiny_head(**kw):
    return FlowHead(**dict(dict(conv1=8, conv2=16, conv3=32, redir=4, f5c_channels=16, patch_size=7, dilation=1,
                                conv3_1=32, conv4=64, conv5=64, conv6=128, deconv=(64, 32, 16, 16, 8, 4)), **kw))


def test_flow_head_batched_equals_per_pair_and_derived_widths():
    torch.manual_seed(0)
    head = tiny_head().eval()
    assert head.match_channels == 4 + 49 + 2 * 16
    assert head.decoder_widths == (128, 64 + 64 + 2, 64 + 32 + 2, 32 + 16 + 2, 16 + 16 + 2, 8 + 8 + 2, 1 + 4 + 2)
    frames = torch.rand(2, 5, 1, 64, 64)
    g1, g2 = torch.randn(2, 4, 16, 8, 8), torch.randn(2, 4, 16, 8, 8)
    with torch.no_grad():
        flow = head(frames, g1, g2)
        for k in range(4):
            for b in range(2):
                alone = head(frames[b:b + 1, k:k + 2], g1[b:b + 1, k:k + 1], g2[b:b + 1, k:k + 1])
                torch.testing.assert_close(alone[0, 0], flow[b, k], rtol=1e-5, atol=1e-5)


def test_flow_head_encodes_each_frame_once():
    head = tiny_head().eval()
    calls = []
    head.conv1.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with torch.no_grad(): head(torch.rand(3, 8, 1, 64, 64), torch.zeros(3, 7, 16, 8, 8), torch.zeros(3, 7, 16, 8, 8))
    assert calls == [3 * 8]  # one call on all B*T frames


def test_flow_head_init_and_no_biases():
    torch.manual_seed(0)
    head = FlowHead()
    convs = [m for m in head.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 11 + 6 + 7 + 6 and all(m.bias is None for m in convs)
    w = head.conv6_1[0].weight  # fan_in = 1024 * 9
    expected = math.sqrt(2.0 / (1 + 0.1 ** 2) / (1024 * 9))
    assert abs(w.std().item() / expected - 1) < 0.02
    bns = [m for m in head.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns: m.weight.fill_(3.0); m.bias.fill_(1.0)
    head.reset_parameters()                      # spec 9: BatchNorm scale 1, offset 0 after (re)initialisation
    assert bns and all((m.weight == 1).all() and (m.bias == 0).all() for m in bns)


def test_flow_head_trains_and_bad_inputs():
    head = tiny_head()
    frames = torch.rand(2, 3, 1, 64, 64)
    g1 = torch.randn(2, 2, 16, 8, 8)
    out = head(frames, g1, g1)
    out.pow(2).mean().backward()
    assert head.conv1[0].weight.grad is not None and head.upsampled_flow6_to_5.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="frames: expected shape"): head(frames[:, :, 0], g1, g1)
    with pytest.raises(ValueError, match="at least 2 frames"): head(frames[:, :1], g1[:, :0], g1[:, :0])
    with pytest.raises(ValueError, match="multiples of 64"): head(frames[..., :32, :32], g1[..., :4, :4], g1[..., :4, :4])
    with pytest.raises(ValueError, match="g_first: expected shape"): head(frames, g1[:, :1], g1)
    with pytest.raises(ValueError, match="g_second: expected shape"): head(frames, g1, g1[:, :, :8])
    with pytest.raises(ValueError, match="deconv: expected 6"): FlowHead(deconv=(1, 2))


def test_landmark_and_expression_heads_shapes_and_errors():
    lh, eh = LandmarkHead(), ExpressionHead().eval()
    assert lh.flat == 6272 and eh.flat == 2560 and eh.pooled == (32, 5, 4, 4)
    assert lh(torch.randn(2, 128, 16, 16)).shape == (2, 68, 2)
    assert eh(torch.randn(2, 14, 128, 16, 16)).shape == (2, 5)
    with pytest.raises(ValueError, match="g: expected shape"): lh(torch.randn(2, 64, 16, 16))
    with pytest.raises(ValueError, match="g_seq: expected shape"): eh(torch.randn(2, 12, 128, 16, 16))
    with pytest.raises(ValueError, match="too small"): ExpressionHead(steps=4)
    # the landmark layout: row l of the output = (x_l, y_l) = released outputs 2l, 2l+1
    x = torch.randn(1, 128, 16, 16)
    flat = lh.fc2(F.relu(lh.fc1(F.relu(lh.conv(x)).flatten(1))))
    torch.testing.assert_close(lh(x)[0, 5], flat[0, 10:12])


@pytest.mark.cuda
def test_heads_on_cuda_and_bf16_autocast():
    dev = torch.device("cuda")
    head = FlowHead().to(dev).eval()
    frames = torch.rand(2, 8, 1, 128, 128, device=dev)
    g1, g2 = torch.randn(2, 7, 128, 16, 16, device=dev), torch.randn(2, 7, 128, 16, 16, device=dev)
    with torch.no_grad():
        ref = head.cpu()(frames.cpu(), g1.cpu(), g2.cpu())
        head.to(dev)
        out = head(frames, g1, g2)
        with torch.autocast("cuda", dtype=torch.bfloat16): out16 = head(frames, g1, g2)
    assert out.device.type == "cuda" and rel_err(out.cpu(), ref) < 1e-3
    assert ((out16.float() - out).norm() / out.norm()).item() < 0.05
    c = LocalCorrelation()
    a, b = torch.randn(4, 256, 16, 16, device=dev), torch.randn(4, 256, 16, 16, device=dev)
    torch.testing.assert_close(c(a, b), correlation_by_shifts(a, b, 21, 2), rtol=1e-3, atol=1e-3)
