"""Training throughput of MOL on this machine: optimiser steps (forward + joint loss + backward + AdamW) per second.

Usage: .venv/bin/python benchmarks/bench_training.py [--arch small|paper|tiny] [--batch 8] [--steps 5]
       [--threads 2] [--precision fp32|bf16|fp16] [--device cpu|cuda] [--demo]
`--demo` benchmarks the model mol-train uses by default (see mol_edu.cli.DEMO). Prints one markdown table row.
Reports wall-clock and CPU time per step, so a contended machine can be recognised (CPU time << wall x threads).
"""
import argparse
import os
import platform
import time

import torch

from mol_edu.cli import DEMO, build_model, input_size, model_spec
from mol_edu.core import get_device, seed_everything
from mol_edu.loss import joint_loss
from mol_edu.train import PRECISIONS, autocast_for, normalise_clip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="small"); ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5); ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default=None); ap.add_argument("--demo", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = get_device(a.device)
    seed_everything(0)
    spec = model_spec(a.arch, 5, **(DEMO.get("model_overrides", {}) if a.demo else {}))
    model = build_model(spec).to(dev).train()
    S, B, T = input_size(spec), a.batch, 8
    batch = {"clip": torch.rand(B, 1, T, S, S, device=dev), "flow": torch.randn(B, T - 1, 2, S, S, device=dev),
             "landmarks": torch.rand(B, T, 68, 2, device=dev) * S, "label": torch.randint(0, 5, (B,), device=dev)}
    batch["landmarks"][:, :, 36:42, 0] -= S / 4; batch["landmarks"][:, :, 42:48, 0] += S / 4
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)
    scaler = torch.amp.GradScaler(dev.type, enabled=a.precision == "fp16")

    def step():
        with autocast_for(dev, a.precision):
            out = model(normalise_clip(batch["clip"]))
        loss = joint_loss(out, batch)["loss"]
        opt.zero_grad(set_to_none=True); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

    for _ in range(a.warmup): step()
    if dev.type == "cuda": torch.cuda.synchronize()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps): step()
    if dev.type == "cuda": torch.cuda.synchronize()
    wall, cpu = (time.perf_counter() - w0) / a.steps, (time.process_time() - c0) / a.steps
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or platform.machine()} x{os.cpu_count()}"
    params = sum(p.numel() for p in model.parameters()) / 1e6
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"| {name} | {a.arch}{' (demo)' if a.demo else ''} {params:.2f} M, {S}x{S} | {a.precision} | {B} | {a.threads} | "
          f"{wall:.3f} s | {cpu:.3f} s | {B / wall:.1f} | {load:.1f} |")


if __name__ == "__main__":
    main()
