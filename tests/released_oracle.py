"""A functional oracle of the *released* MOL forward, written from the spec (MOL.md) only.

It works directly on a state dict with the released keys and the released layouts, and computes the forward the way
the released model does: a Python loop over the 7 frame pairs, the stem run on both frames of every pair, the CCC as a
per-node / per-neighbour loop of `conv1d` calls, the FlowNetC correlation as a loop over displacements, and the MER
head's 3D convolution on a time-last `(B, C, H, W, 2P)` stack. Outputs are in the released formats:
`logits (B, classes)`, `flow (B, 2, H, W, P)`, `landmarks (B, 136, P)`.

`released_shapes(dims)` gives every released key's shape for a set of sizes; with the released sizes it must equal the
official key list (tests/released_state_dict_keys.txt, a copy of the spec's list). `random_released_state_dict`
fills such a dict with random values of sensible scale (BatchNorm running statistics included).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

KEYS_FILE = Path(__file__).with_name("released_state_dict_keys.txt")


@dataclass
class ReleasedDims:
    "The sizes that fix the released model's shapes (defaults = the released checkpoint)."
    classes: int = 5
    channels: int = 128        # stem output / F5C width
    meta_len: int = 32         # FCC meta-kernel length
    size: int = 16             # F5C map side (stem output for the image size)
    k: int = 4                 # CCC neighbours
    flow_width: int = 64       # flow head conv1 width
    corr_patch: int = 21
    corr_dilation: int = 2
    landmarks: int = 68
    landmark_hidden: int = 512
    expression_hidden: int = 256
    pairs: int = 7


def read_official_shapes(path=KEYS_FILE) -> dict:
    "key -> shape tuple, from the official key list."
    out = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip(): continue
        key, shape = line.split(" ", 1)
        out[key] = tuple(int(s) for s in shape.strip("() ").split(",") if s.strip())
    return out


def released_shapes(d: ReleasedDims) -> dict:
    "Every released key and its shape, derived from the sizes in `d` (spec sections 1-5)."
    C, c, L, N, w = d.channels, d.channels // 2, d.meta_len, d.size * d.size, d.flow_width
    s = {}
    widths = [1, C // 16, C // 4, C // 2, C]
    for i, kk in enumerate((4, 3, 2, 1)):
        s[f"conv_stack.conv_stack.{i}.weight"] = (widths[i + 1], widths[i], kk, kk)
        s[f"conv_stack.conv_stack.{i}.bias"] = (widths[i + 1],)
    def bn(prefix, n):
        for name in ("weight", "bias", "running_mean", "running_var"): s[f"{prefix}.{name}"] = (n,)
        s[f"{prefix}.num_batches_tracked"] = ()
    for b in (1, 2):
        p = f"FCC_{b}."
        for i in (1, 2):
            s[p + f"meta_kernel_{i}_H"] = (c, 1, L, 1); s[p + f"meta_kernel_{i}_W"] = (c, 1, 1, L)
        for i in (1, 2):
            s[p + f"meta_{i}_H_bias"] = (c,); s[p + f"meta_{i}_W_bias"] = (c,)
        for i in (1, 2):
            s[p + f"meta_pe_{i}_H"] = (1, c, L, 1); s[p + f"meta_pe_{i}_W"] = (1, c, 1, L)
        bn(p + "pre_Norm_1", c); bn(p + "pre_Norm_2", c); bn(p + "ffn.0", C)
        s[p + "ffn.1.weight"] = (2, C, 1, 1); s[p + "ffn.1.bias"] = (2,)
        s[p + "ffn.4.weight"] = (C, 2, 1, 1); s[p + "ffn.4.bias"] = (C,)
    for b in (1, 2):
        for i in (1, 2):
            s[f"CCC_{b}.conv{i}.weight"] = (N, 1, N); s[f"CCC_{b}.conv{i}.bias"] = (N,)
    f = "flownet."
    corr = d.corr_patch ** 2
    enc = [("conv1", w, 1, 6), ("conv2", 2 * w, w, 4), ("conv3", 4 * w, 2 * w, 2), ("conv_redir", w // 2, 4 * w, 1),
           ("conv3_1", 4 * w, w // 2 + corr + 2 * C, 3), ("conv4", 8 * w, 4 * w, 3), ("conv4_1", 8 * w, 8 * w, 3),
           ("conv5", 8 * w, 8 * w, 3), ("conv5_1", 8 * w, 8 * w, 3), ("conv6", 16 * w, 8 * w, 3),
           ("conv6_1", 16 * w, 16 * w, 3)]
    for name, cout, cin, kk in enc:
        s[f + name + ".0.weight"] = (cout, cin, kk, kk); bn(f + name + ".1", cout)
    # decoder: (level, input channels of the level's concat, deconv output)
    cat6 = 16 * w
    cat5 = 8 * w + 8 * w + 2
    cat4 = 8 * w + 4 * w + 2
    cat3 = 4 * w + 2 * w + 2
    cat2 = 2 * w + 2 * w + 2
    cat1 = w + w + 2
    cat0 = 1 + w // 2 + 2
    dec = [("5", cat6, 8 * w), ("4", cat5, 4 * w), ("3", cat4, 2 * w), ("2", cat3, 2 * w), ("1", cat2, w), ("0", cat1, w // 2)]
    for lvl, cin, cout in dec: s[f + f"deconv{lvl}.0.weight"] = (cin, cout, 4, 4)
    for lvl, cin in (("6", cat6), ("5", cat5), ("4", cat4), ("3", cat3), ("2", cat2), ("1", cat1), ("0", cat0)):
        s[f + f"predict_flow{lvl}.weight"] = (2, cin, 3, 3)
    for a, b in (("6", "5"), ("5", "4"), ("4", "3"), ("3", "2"), ("2", "1"), ("1", "0")):
        s[f + f"upsampled_flow{a}_to_{b}.weight"] = (2, 2, 4, 4)
    t_conv = 2 * d.pairs - 4                                         # temporal kernel 5, stride 1
    flat = (C // 4) * (d.size // 4) * (d.size // 4) * (t_conv // 2)  # after MaxPool3d(2)
    s["mer_3dcnn.conv3d.weight"] = (C // 4, C, 2, 2, 5); s["mer_3dcnn.conv3d.bias"] = (C // 4,)
    s["mer_3dcnn.fc1.weight"] = (d.expression_hidden, flat); s["mer_3dcnn.fc1.bias"] = (d.expression_hidden,)
    s["mer_3dcnn.fc2.weight"] = (d.classes, d.expression_hidden); s["mer_3dcnn.fc2.bias"] = (d.classes,)
    s["ldm_predictor.convldm.weight"] = (C // 4, C, 3, 3); s["ldm_predictor.convldm.bias"] = (C // 4,)
    s["ldm_predictor.fc1.weight"] = (d.landmark_hidden, (C // 4) * (d.size - 2) ** 2)
    s["ldm_predictor.fc1.bias"] = (d.landmark_hidden,)
    s["ldm_predictor.fc2.weight"] = (2 * d.landmarks, d.landmark_hidden)
    s["ldm_predictor.fc2.bias"] = (2 * d.landmarks,)
    return s


def random_released_state_dict(shapes: dict, seed: int = 0) -> dict:
    "Random tensors for every key: fan-in scaled weights, non-trivial BatchNorm affine and running statistics."
    g = torch.Generator().manual_seed(seed)
    def randn(*shape): return torch.randn(*shape, generator=g)
    def rand(*shape): return torch.rand(*shape, generator=g)
    sd = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked": sd[key] = torch.tensor(int(rand(1).item() * 1000), dtype=torch.long)
        elif leaf == "running_mean": sd[key] = 0.1 * randn(*shape)
        elif leaf == "running_var": sd[key] = 0.5 + 1.5 * rand(*shape)
        elif "meta_kernel" in key: sd[key] = (2 * rand(*shape) - 1) / shape[2 if "_H" in key else 3] ** 0.5
        elif "meta_pe" in key or "meta_" in key and key.endswith("_bias"): sd[key] = randn(*shape)
        elif len(shape) == 1 and (".1." in key and key.startswith("flownet.") or "pre_Norm" in key or "ffn.0" in key):
            sd[key] = (0.5 + rand(*shape)) if leaf == "weight" else 0.2 * (2 * rand(*shape) - 1)   # BN affine
        elif leaf == "bias": sd[key] = 0.1 * (2 * rand(*shape) - 1)
        else:
            transposed = ".deconv" in key or "upsampled_flow" in key
            fan_in = shape[0] * shape[2] * shape[3] / 4 if transposed else max(1, int(torch.tensor(shape[1:]).prod()))
            gain = 2 ** 0.5 if key.startswith("flownet.") else 1.0
            sd[key] = gain * randn(*shape) / fan_in ** 0.5
    return sd


# ---------------------------------------------------------------- the released forward, functionally
def _bn(sd, p, x):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        training=False, eps=1e-5)


def stem(sd, x):
    "Released conv stack: k4 s2, k3 s2, k2 s2 p1, k1; no normalisation, no activation."
    for i, (st, pad) in enumerate(((2, 0), (2, 0), (2, 1), (1, 0))):
        x = F.conv2d(x, sd[f"conv_stack.conv_stack.{i}.weight"], sd[f"conv_stack.conv_stack.{i}.bias"], st, pad)
    return x


def circular(z, kernel, bias, axis):
    "(K *H Z)[c,i,j] = b_c + sum_m K[c,m] Z[c,(i+m) mod S, j], summed term by term with torch.roll."
    dim = 2 if axis == "H" else 3
    out = bias.view(1, -1, 1, 1) + torch.zeros_like(z)
    for m in range(z.shape[dim]):
        out = out + kernel[:, m].view(1, -1, 1, 1) * torch.roll(z, -m, dims=dim)
    return out


def fcc(sd, p, x):
    "Released FCC (spec 2a); the ffn.* parameters are never used."
    H, W = x.shape[-2:]
    c = x.shape[1] // 2
    x1, x2 = x[:, :c], x[:, c:]
    z1 = _bn(sd, p + "pre_Norm_1", x1 + sd[p + "meta_pe_1_H"][:, :, :H])
    u1 = circular(z1, sd[p + "meta_kernel_1_H"][:, 0, :H, 0], sd[p + "meta_1_H_bias"], "H")
    v1 = circular(u1 + sd[p + "meta_pe_2_W"][..., :W], sd[p + "meta_kernel_2_W"][:, 0, 0, :W], sd[p + "meta_2_W_bias"], "W")
    z2 = _bn(sd, p + "pre_Norm_2", x2 + sd[p + "meta_pe_1_W"][..., :W])
    u2 = circular(z2, sd[p + "meta_kernel_1_W"][:, 0, 0, :W], sd[p + "meta_1_W_bias"], "W")
    v2 = circular(u2 + sd[p + "meta_pe_2_H"][:, :, :H], sd[p + "meta_kernel_2_H"][:, 0, :H, 0], sd[p + "meta_2_H_bias"], "H")
    return torch.cat([x1 + v1, x2 + v2], 1)


def conv1d_as_released(v, weight, bias):
    "The release's `Conv1d(1, N, kernel_size=N)` on one N-vector: one output per filter, i.e. a linear map N -> N."
    return F.linear(v, weight[:, 0, :], bias)     # same numbers as F.conv1d(v.view(1, 1, N), weight, bias).view(N)


def ccc(sd, p, x, k):
    "Released CCC (spec 2b), one conv1d call per channel and neighbour, as the release does."
    B, C, H, W = x.shape
    N = H * W
    w1, b1, w2, b2 = sd[p + "conv1.weight"], sd[p + "conv1.bias"], sd[p + "conv2.weight"], sd[p + "conv2.bias"]
    out = torch.empty(B, C, N)
    for b in range(B):
        X = x[b].reshape(C, N)
        unit = X / X.norm(dim=0, keepdim=True)                               # positions' unit C-vectors
        sim = unit.T @ unit                                                  # cosine similarity of positions
        nbr = sim.topk(k, dim=1).indices                                     # (N, k), self included
        G = torch.stack([X[:, nbr[:, j]] - X for j in range(k)], dim=-1)     # G[c, p, j]
        for c in range(C):
            x_c = X[c]
            node = conv1d_as_released(x_c, w1, b1)                          # W1 x_c + b1
            hs = [F.relu(node + conv1d_as_released(G[c, :, j] - x_c, w2, b2)) for j in range(k)]
            out[b, c] = torch.stack(hs).max(0).values
    return out.view(B, C, H, W)


def f5c(sd, block, x, k):
    f = fcc(sd, f"FCC_{block}.", x)
    return f + ccc(sd, f"CCC_{block}.", f, k)


def _cbl(sd, name, x, stride, pad):
    x = F.conv2d(x, sd[f"flownet.{name}.0.weight"], None, stride, pad)
    return F.leaky_relu(_bn(sd, f"flownet.{name}.1", x), 0.1)


def correlation(a, b, patch, dilation):
    "corr[patch*i + j, y, x] = sum_c a[c,y,x] b[c, y + d(i-r), x + d(j-r)], zero outside, one displacement at a time."
    B, C, H, W = a.shape
    r = patch // 2
    R = dilation * r
    bp = F.pad(b, (R, R, R, R))
    out = []
    for i in range(patch):
        for j in range(patch):
            dy, dx = dilation * (i - r), dilation * (j - r)
            out.append((a * bp[:, :, R + dy : R + dy + H, R + dx : R + dx + W]).sum(1))
    return torch.stack(out, 1)


def flownet(sd, im1, im2, g1, g2, patch, dilation):
    "Released FlowNetC-style head for one pair (spec 3); returns flow0 (B, 2, H, W)."
    c1a = _cbl(sd, "conv1", im1, 2, 2); c2a = _cbl(sd, "conv2", c1a, 2, 1); c3a = _cbl(sd, "conv3", c2a, 2, 0)
    c1b = _cbl(sd, "conv1", im2, 2, 2); c2b = _cbl(sd, "conv2", c1b, 2, 1); c3b = _cbl(sd, "conv3", c2b, 2, 0)
    corr = F.leaky_relu(correlation(c3a, c3b, patch, dilation) / c3a.shape[1], 0.1)
    redir = _cbl(sd, "conv_redir", c3a, 1, 0)
    c3_1 = _cbl(sd, "conv3_1", torch.cat([redir, corr, g1, g2], 1), 1, 1)
    c4 = _cbl(sd, "conv4", c3_1, 2, 1); c4_1 = _cbl(sd, "conv4_1", c4, 1, 1)
    c5 = _cbl(sd, "conv5", c4_1, 2, 1); c5_1 = _cbl(sd, "conv5_1", c5, 1, 1)
    c6 = _cbl(sd, "conv6", c5_1, 2, 1); c6_1 = _cbl(sd, "conv6_1", c6, 1, 1)
    def pred(lvl, x): return F.conv2d(x, sd[f"flownet.predict_flow{lvl}.weight"], None, 1, 1)
    def up(a, b, x): return F.conv_transpose2d(x, sd[f"flownet.upsampled_flow{a}_to_{b}.weight"], None, 2, 1)
    def deconv(lvl, x): return F.leaky_relu(F.conv_transpose2d(x, sd[f"flownet.deconv{lvl}.0.weight"], None, 2, 1), 0.1)
    x = c6_1
    for lvl, skip in (("6", c5_1), ("5", c4_1), ("4", c3_1), ("3", c2a), ("2", c1a), ("1", im1)):
        nxt = str(int(lvl) - 1)
        flow_up = up(lvl, nxt, pred(lvl, x))
        x = torch.cat([skip, deconv(nxt, x), flow_up], 1)
    return pred("0", x)


def landmark_head(sd, g):
    x = F.relu(F.conv2d(g, sd["ldm_predictor.convldm.weight"], sd["ldm_predictor.convldm.bias"]))
    x = F.relu(F.linear(x.flatten(1), sd["ldm_predictor.fc1.weight"], sd["ldm_predictor.fc1.bias"]))
    return F.linear(x, sd["ldm_predictor.fc2.weight"], sd["ldm_predictor.fc2.bias"])      # (B, 136) x0, y0, x1, ...


def mer_head(sd, feats):
    "feats (B, C, H, W, 2P), time last as released; eval mode (dropout off)."
    x = F.conv3d(feats, sd["mer_3dcnn.conv3d.weight"], sd["mer_3dcnn.conv3d.bias"], stride=(2, 2, 1))
    x = F.max_pool3d(x, 2)
    x = F.relu(F.linear(x.flatten(1), sd["mer_3dcnn.fc1.weight"], sd["mer_3dcnn.fc1.bias"]))
    return F.linear(x, sd["mer_3dcnn.fc2.weight"], sd["mer_3dcnn.fc2.bias"])


@torch.no_grad()
def released_forward(sd, clip, k=4, corr_patch=21, corr_dilation=2):
    "The released MOL forward in eval mode: clip (B, 1, T, H, W) -> logits (B, classes), flow (B, 2, H, W, P), landmarks (B, 2L, P)."
    T = clip.shape[2]
    flows, ldms, seq = [], [], []
    for t in range(T - 1):                                       # loop over pairs
        im1, im2 = clip[:, :, t], clip[:, :, t + 1]
        g1 = f5c(sd, 1, stem(sd, im1), k)                        # the stem runs on both frames of every pair
        g2 = f5c(sd, 2, stem(sd, im2), k)
        flows.append(flownet(sd, im1, im2, g1, g2, corr_patch, corr_dilation))
        ldms.append(landmark_head(sd, g2))
        seq += [g1, g2]
    logits = mer_head(sd, torch.stack(seq, dim=-1))              # (B, C, h, w, 2P)
    return logits, torch.stack(flows, -1), torch.stack(ldms, -1)
