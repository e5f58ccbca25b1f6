"""Throughput of the synthetic generator: clips per second (8 x 128 x 128 frames + exact flow + landmarks) on one
CPU core. Reports wall-clock clips/s and clips per CPU-second (the latter is robust to a busy shared machine).

Usage: python benchmarks/bench_synthetic.py [--n 200] [--size 128]
"""
import argparse
import platform
import time

import torch

from mol_edu.synthetic import SyntheticMicroExpressions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="clips to render")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = SyntheticMicroExpressions(subjects=16, videos_per_class=2, size=args.size)
    for i in range(0, len(ds), max(1, len(ds) // 16)): ds[i]          # warm-up: neutral faces of every subject
    n = min(args.n, len(ds))
    idx = [(i * 7919) % len(ds) for i in range(n)]
    w0, c0 = time.perf_counter(), time.process_time()
    for i in idx: ds[i]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"{platform.processor() or platform.machine()} | torch {torch.__version__} | 1 thread | {n} clips "
          f"{args.size}x{args.size}: {n / wall:.1f} clips/s wall, {n / cpu:.1f} clips per CPU-second "
          f"({1e3 * cpu / n:.1f} ms CPU per clip)")


if __name__ == "__main__":
    main()
