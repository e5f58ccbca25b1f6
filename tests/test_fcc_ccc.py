"""FCC, CCC, stem and F5C against slow oracles written from the spec (MOL.md sections 1, 2a, 2b)."""
import pytest
import torch
import torch.nn.functional as F

from mol_edu.fcc import FullyConnectedConv, circular_conv
from mol_edu.ccc import ChannelCorrespondenceConv, cosine_knn
from mol_edu.f5c import ConvStem, F5CBlock


# ---------------------------------------------------------------- oracles
def circ_oracle(z, kernel, bias, axis):
    "(K *H Z)[c,i,j] = b_c + sum_m K[c,m] Z[c,(i+m) mod S, j], by rolling: term m is Z shifted up by m."
    dim = 2 if axis == "H" else 3
    S = z.shape[dim]
    out = bias.view(1, -1, 1, 1).expand_as(z).clone()
    for m in range(S):
        shape = (1, -1, 1, 1)
        out = out + kernel[:, m].view(shape) * torch.roll(z, shifts=-m, dims=dim)
    return out


def bn_eval(z, w, b, mean, var, eps=1e-5):
    sh = (1, -1, 1, 1)
    return (z - mean.view(sh)) / torch.sqrt(var.view(sh) + eps) * w.view(sh) + b.view(sh)


def fcc_oracle(p, x):
    "Released FCC from the spec's equations, on a dict of released-named tensors (prefix stripped)."
    H, W = x.shape[-2:]
    c = x.shape[1] // 2
    x1, x2 = x[:, :c], x[:, c:]
    n1 = [p[f"pre_Norm_1.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
    n2 = [p[f"pre_Norm_2.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
    z1 = bn_eval(x1 + p["meta_pe_1_H"][:, :, :H, :], *n1)
    u1 = circ_oracle(z1, p["meta_kernel_1_H"][:, 0, :H, 0], p["meta_1_H_bias"], "H")
    v1 = circ_oracle(u1 + p["meta_pe_2_W"][:, :, :, :W], p["meta_kernel_2_W"][:, 0, 0, :W], p["meta_2_W_bias"], "W")
    z2 = bn_eval(x2 + p["meta_pe_1_W"][:, :, :, :W], *n2)
    u2 = circ_oracle(z2, p["meta_kernel_1_W"][:, 0, 0, :W], p["meta_1_W_bias"], "W")
    v2 = circ_oracle(u2 + p["meta_pe_2_H"][:, :, :H, :], p["meta_kernel_2_H"][:, 0, :H, 0], p["meta_2_H_bias"], "H")
    return torch.cat([x1 + v1, x2 + v2], 1)


def knn_oracle(feats, k):
    "feats (M, D): for each row, the k rows with the largest cosine similarity (self included)."
    out = []
    for p in range(feats.shape[0]):
        s = F.cosine_similarity(feats[p : p + 1], feats, dim=1)
        out.append(torch.argsort(s, descending=True)[:k])
    return torch.stack(out)


def ccc_released_oracle(x, W1, b1, W2, b2, k):
    "Per-node loop of the released CCC (spec 2b): neighbours among positions, channels as nodes, double subtraction."
    B, C, H, W = x.shape
    outs = []
    for b in range(B):
        X = x[b].reshape(C, H * W)
        nbr = knn_oracle(X.T, k)                                   # (N, k)
        rows = []
        for c in range(C):
            G = [X[c, nbr[:, j]] - X[c] for j in range(k)]         # G[c, :, j]
            hs = [F.relu(W1 @ X[c] + b1 + W2 @ (G[j] - X[c]) + b2) for j in range(k)]
            rows.append(torch.stack(hs).max(0).values)
        outs.append(torch.stack(rows))
    return torch.stack(outs).view(B, C, H, W)


def ccc_paper_oracle(x, W1, b1, W2, b2, Wm, bm, k):
    B, C, H, W = x.shape
    outs = []
    for b in range(B):
        X = x[b].reshape(C, H * W)
        nbr = knn_oracle(X, k)
        rows = [torch.stack([F.relu(W1 @ X[i] + b1 + W2 @ (X[nbr[i, j]] - X[i]) + b2) for j in range(k)]).max(0).values
                for i in range(C)]
        outs.append(Wm @ torch.stack(rows) + bm[:, None])
    return torch.stack(outs).view(B, C, H, W)


def randomise_fcc(m):
    with torch.no_grad():
        for bn in (m.norm1, m.norm2):
            bn.weight.uniform_(0.5, 1.5); bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-1, 1); bn.running_var.uniform_(0.5, 2)
    return m.eval()


def fcc_as_released(m):
    "Our FCC's tensors under the released names."
    return {
        "meta_kernel_1_H": m.kernel1_h, "meta_kernel_1_W": m.kernel1_w, "meta_kernel_2_H": m.kernel2_h,
        "meta_kernel_2_W": m.kernel2_w, "meta_1_H_bias": m.bias1_h, "meta_1_W_bias": m.bias1_w,
        "meta_2_H_bias": m.bias2_h, "meta_2_W_bias": m.bias2_w, "meta_pe_1_H": m.pe1_h, "meta_pe_1_W": m.pe1_w,
        "meta_pe_2_H": m.pe2_h, "meta_pe_2_W": m.pe2_w,
        **{f"pre_Norm_{i}.{n}": getattr(getattr(m, f"norm{i}"), n)
           for i in (1, 2) for n in ("weight", "bias", "running_mean", "running_var")},
    }


# ---------------------------------------------------------------- FCC
@pytest.mark.parametrize("S", [1, 5, 16])
@pytest.mark.parametrize("axis", ["H", "W"])
def test_circular_conv_matches_roll_oracle(S, axis):
    torch.manual_seed(S)
    z = torch.randn(2, 3, S, S + 2) if axis == "H" else torch.randn(2, 3, S + 2, S)
    k, b = torch.randn(3, S), torch.randn(3)
    torch.testing.assert_close(circular_conv(z, k, b, axis), circ_oracle(z, k, b, axis), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("C,L,H,W", [(128, 32, 16, 16), (8, 12, 6, 10), (16, 8, 8, 8)])
def test_fcc_matches_spec_oracle(C, L, H, W):
    torch.manual_seed(C + H)
    m = randomise_fcc(FullyConnectedConv(C, L))
    x = torch.randn(2, C, H, W)
    with torch.no_grad():
        torch.testing.assert_close(m(x), fcc_oracle(fcc_as_released(m), x), rtol=1e-4, atol=1e-4)


def test_fcc_crop_uses_first_entries_only():
    "Entries of meta-kernels and PEs beyond S must not influence a size-S map (crop [:S], not centred)."
    torch.manual_seed(0)
    m = randomise_fcc(FullyConnectedConv(8, 32))
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        ref = m(x)
        for p in (m.kernel1_h, m.kernel2_h, m.pe1_h, m.pe2_h): p[:, :, 16:].normal_()
        for p in (m.kernel1_w, m.kernel2_w, m.pe1_w, m.pe2_w): p[..., 16:].normal_()
        torch.testing.assert_close(m(x), ref)
        m.kernel1_h[:, :, 0] += 1.0                      # the first entry does matter
        assert not torch.allclose(m(x), ref)


def test_fcc_init_matches_release():
    torch.manual_seed(0)
    m = FullyConnectedConv(128, 32)
    bound = 1 / 32 ** 0.5
    for p in (m.kernel1_h, m.kernel1_w, m.kernel2_h, m.kernel2_w):
        assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound
    for p in (m.pe1_h, m.bias1_h):
        assert 0.8 < p.std() < 1.2
    assert torch.all(m.norm1.weight == 1) and torch.all(m.norm1.bias == 0)
    assert not hasattr(m, "ffn")


def test_fcc_global_receptive_field():
    m = FullyConnectedConv(8, 32).eval()
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    m(x)[0, :, 3, 11].sum().backward()
    assert (x.grad[0].abs().sum(0) > 0).all()


def test_fcc_bad_shapes():
    m = FullyConnectedConv(8, 12)
    with pytest.raises(ValueError, match=r"expected shape \(B, C=8, H, W\)"): m(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="larger than meta_len"): m(torch.randn(1, 8, 16, 8))


# ---------------------------------------------------------------- kNN and CCC
def test_cosine_knn_matches_oracle_and_includes_self():
    torch.manual_seed(0)
    x = torch.randn(3, 40, 7)
    nbr = cosine_knn(x, 5)
    for b in range(3): torch.testing.assert_close(nbr[b], knn_oracle(x[b], 5))
    assert torch.equal(nbr[..., 0], torch.arange(40).expand(3, 40))


@pytest.mark.parametrize("C,S,k", [(128, 16, 4), (12, 5, 3), (16, 8, 1)])
def test_ccc_released_matches_per_node_loop(C, S, k):
    torch.manual_seed(C + S)
    m = ChannelCorrespondenceConv(C, S * S, k, "released")
    x = torch.randn(1 if C == 128 else 2, C, S, S)
    with torch.no_grad():
        ref = ccc_released_oracle(x, m.node_linear.weight, m.node_linear.bias, m.edge_linear.weight, m.edge_linear.bias, k)
        torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C,S,k", [(128, 16, 4), (12, 5, 3)])
def test_ccc_paper_matches_per_node_loop(C, S, k):
    torch.manual_seed(C)
    m = ChannelCorrespondenceConv(C, S * S, k, "paper")
    x = torch.randn(2, C, S, S)
    with torch.no_grad():
        ref = ccc_paper_oracle(x, m.node_linear.weight, m.node_linear.bias, m.edge_linear.weight, m.edge_linear.bias,
                               m.mix.weight[..., 0], m.mix.bias, k)
        torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-4)


def test_ccc_gradients_match_loop():
    torch.manual_seed(1)
    m = ChannelCorrespondenceConv(10, 16, 3, "released")
    x = torch.randn(2, 10, 4, 4, requires_grad=True)
    g1, = torch.autograd.grad(m(x).square().sum(), x)
    ref = ccc_released_oracle(x, m.node_linear.weight, m.node_linear.bias, m.edge_linear.weight, m.edge_linear.bias, 3)
    g2, = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-5)


def test_ccc_double_subtraction_is_reproduced():
    "With a single subtraction (textbook EdgeConv) the output would differ: the test can fail."
    torch.manual_seed(2)
    m = ChannelCorrespondenceConv(10, 16, 3, "released")
    x = torch.randn(1, 10, 4, 4)
    W1, b1, W2, b2 = m.node_linear.weight, m.node_linear.bias, m.edge_linear.weight, m.edge_linear.bias
    with torch.no_grad():
        X = x[0].reshape(10, 16)
        nbr = knn_oracle(X.T, 3)
        single = torch.stack([torch.stack([F.relu(W1 @ X[c] + b1 + W2 @ (X[c, nbr[:, j]] - X[c]) + b2)
                                           for j in range(3)]).max(0).values for c in range(10)])
        assert not torch.allclose(m(x)[0].reshape(10, 16), single, atol=1e-3)


def test_ccc_bad_config_and_shapes():
    with pytest.raises(ValueError, match="reading must be one of"): ChannelCorrespondenceConv(reading="Released")
    m = ChannelCorrespondenceConv(8, 16, 2)
    with pytest.raises(ValueError, match="H\\*W must be 16"): m(torch.randn(1, 8, 5, 5))


# ---------------------------------------------------------------- stem and F5C
def test_stem_released_shapes_and_widths():
    stem = ConvStem(128)
    assert [tuple(c.weight.shape) for c in stem.convs] == [(8, 1, 4, 4), (32, 8, 3, 3), (64, 32, 2, 2), (128, 64, 1, 1)]
    assert stem(torch.randn(1, 1, 128, 128)).shape == (1, 128, 16, 16)
    assert ConvStem.out_size(128) == 16 and ConvStem.out_size(64) == 8


def test_f5c_block_is_fcc_plus_ccc_of_fcc():
    torch.manual_seed(0)
    blk = F5CBlock(16, 8, 16, 4).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        f = blk.fcc(x)
        torch.testing.assert_close(blk(x), f + blk.ccc(f))
