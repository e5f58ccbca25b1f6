"""Time the F5C parts of MOL at the released size: FCC, CCC (release-style per-node loop vs vectorised), both blocks.

Usage: python benchmarks/bench_f5c.py [--threads 1] [--repeats 10]
Prints milliseconds per clip (14 F5C maps of 128 x 16 x 16: 7 pairs x 2 blocks), CPU time and wall time.
"""
import argparse
import time

import torch
import torch.nn.functional as F

from mol_edu.ccc import ChannelCorrespondenceConv
from mol_edu.f5c import F5CBlock


def ccc_node_loop(m, x):
    "The release's way: one small call per channel and neighbour (kNN vectorised, as the release does it)."
    B, C, H, W = x.shape
    out = torch.empty(B, C, H * W)
    for b in range(B):
        X = x[b].reshape(C, H * W)
        unit = F.normalize(X, dim=0)
        nbr = (unit.T @ unit).topk(m.k, dim=1).indices
        for c in range(C):
            hs = [F.relu(m.node_linear(X[c]) + m.edge_linear(X[c, nbr[:, j]] - 2 * X[c])) for j in range(m.k)]
            out[b, c] = torch.stack(hs).max(0).values
    return out.view_as(x)


def timed(fn, repeats):
    fn()
    w, c = time.perf_counter(), time.process_time()
    for _ in range(repeats): fn()
    return (time.perf_counter() - w) / repeats * 1e3, (time.process_time() - c) / repeats * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    blk = F5CBlock().eval()
    x = torch.randn(7, 128, 16, 16)            # one clip's maps for one block
    with torch.no_grad():
        f = blk.fcc(x)
        rows = {
            "FCC, 2 blocks": timed(lambda: blk.fcc(x), a.repeats),
            "CCC vectorised, 2 blocks": timed(lambda: blk.ccc(f), a.repeats),
            "CCC per-node loop (release style), 2 blocks": timed(lambda: ccc_node_loop(blk.ccc, f), max(1, a.repeats // 5)),
            "F5C, 2 blocks": timed(lambda: blk(x), a.repeats),
        }
        torch.testing.assert_close(ccc_node_loop(blk.ccc, f), blk.ccc(f), rtol=1e-4, atol=1e-4)
    print(f"torch {torch.__version__}, {a.threads} thread(s); ms per clip (7 maps per block x 2 blocks)")
    for name, (wall, cpu) in rows.items(): print(f"{name:<46} wall {2 * wall:8.1f}   cpu {2 * cpu:8.1f}")


if __name__ == "__main__":
    main()
