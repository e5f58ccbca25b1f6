"""Speed of MOL (and of its flow head and correlation) on this machine, against the GEMM roofline.

    .venv/bin/python benchmarks/bench_model.py                      # released preset, fp32 CPU: the table for the README
    .venv/bin/python benchmarks/bench_model.py --part correlation   # the correlation variants at the released sizes
    .venv/bin/python benchmarks/bench_model.py --part flowhead      # the flow head alone: conv_transpose2d vs 3x3 conv + pixel_shuffle
    .venv/bin/python benchmarks/bench_model.py --device cuda        # the same on a GPU (add --bf16 for autocast)

Every timing is the median of `--repeats` runs after one warm-up run. The GEMM rate (a 2048x2048 fp32 matmul) is
measured in the same run, so that the roofline (FLOPs / GEMM rate) describes the machine as it was during the run.
Peak memory on the CPU is the process's peak resident set size (ru_maxrss), on a GPU torch's peak allocation.
"""
from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

FWD_GFLOP_PER_CLIP = 29.6  # this model's forward per clip, released preset (torch.utils.flop_counter, batch 1)
STEP_GFLOP_PER_CLIP = 90.0  # forward + backward per clip, counted the same way


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def timed(fn, device, repeats):
    "Median seconds of `fn()` over `repeats` runs, after one warm-up run."
    fn(); sync(device)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(device); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def gemm_rate(device, repeats):
    "fp32 GFLOP/s of a 2048x2048 matmul."
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    t, _ = timed(lambda: a @ b, device, max(repeats, 5))
    return 2 * 2048 ** 3 / t / 1e9


def peak_memory_mb(device):
    if device.type == "cuda": return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine(device):
    if device.type == "cuda": return torch.cuda.get_device_name(device)
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except Exception: name = platform.processor() or "unknown CPU"
    return f"{name}, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------- correlation variants
def bench_correlation(device, repeats):
    from mol_edu.correlation import correlation_by_matmul, correlation_by_shifts
    print("| pairs | method | forward (ms) | forward + backward (ms) |\n|---|---|---|---|")
    for n in (7, 28):
        f1 = torch.randn(n, 256, 16, 16, device=device, requires_grad=True)
        f2 = torch.randn(n, 256, 16, 16, device=device, requires_grad=True)
        for name, fn in (("shifted products", correlation_by_shifts), ("Gram matrix", correlation_by_matmul)):
            def fwd():
                with torch.no_grad(): fn(f1, f2, 21, 2)
            def fwd_bwd(): fn(f1, f2, 21, 2).sum().backward()
            tf, _ = timed(fwd, device, repeats)
            tb, _ = timed(fwd_bwd, device, repeats)
            print(f"| {n} | {name} | {tf * 1e3:.1f} | {tb * 1e3:.1f} |")


# ---------------------------------------------------------------- the flow head alone
def bench_flowhead(device, repeats, batch):
    from mol_edu.heads import FlowHead
    frames = torch.rand(batch, 8, 1, 128, 128, device=device)
    g1, g2 = torch.randn(batch, 7, 128, 16, 16, device=device), torch.randn(batch, 7, 128, 16, 16, device=device)
    print(f"flow head, batch {batch} clips (7 pairs each), fp32")
    print("| transposed convs | forward (s) | forward + backward (s) |\n|---|---|---|")
    for fast in (False, True):
        torch.manual_seed(0)
        head = FlowHead(deconv_as_conv=fast).to(device)
        def fwd():
            with torch.no_grad(): head(frames, g1, g2)
        def fwd_bwd(): head(frames, g1, g2).pow(2).mean().backward()
        tf, _ = timed(fwd, device, repeats)
        tb, _ = timed(fwd_bwd, device, repeats)
        print(f"| {'3x3 conv + pixel_shuffle' if fast else 'conv_transpose2d'} | {tf:.3f} | {tb:.3f} |")


# ---------------------------------------------------------------- the whole model
def stand_in_loss(out, flow_t, ldm_t, y):
    "The joint loss's shape (CE + 10 flow MSE + 0.1 landmark L1): enough to time a training step."
    return F.cross_entropy(out.logits, y) + 10 * F.mse_loss(out.flow, flow_t) + 0.1 * (out.landmarks - ldm_t).abs().mean()


def module_split(model, x):
    "Forward seconds spent in each top-level child of MOL and of its flow head (hooks around one forward)."
    times, starts, handles = {}, {}, []
    named = [(n, m) for n, m in model.named_children()]
    if hasattr(model, "flow_head"): named += [(f"flow_head.{n}", m) for n, m in model.flow_head.named_children()]
    for name, mod in named:
        def pre(m, i, name=name): starts[name] = time.perf_counter()
        def post(m, i, o, name=name): times[name] = times.get(name, 0.0) + time.perf_counter() - starts[name]
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    with torch.no_grad():
        t0 = time.perf_counter(); model(x); total = time.perf_counter() - t0
    for h in handles: h.remove()
    return total, times


def bench_model(args, device):
    from mol_edu.model import MOL, MOLConfig
    cfg = MOLConfig.preset(args.preset)
    torch.manual_seed(0)
    model = MOL(cfg).to(device)
    if args.channels_last: model.flow_head.to(memory_format=torch.channels_last)  # 4-D weights only (the MER head is 3-D)
    T, S, B = cfg.frames, cfg.image_size, args.batch
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else torch.autocast(device.type, enabled=False)
    gemm = gemm_rate(device, args.repeats)
    print(f"machine: {machine(device)} | torch {torch.__version__} | preset {args.preset} | fp32 GEMM {gemm:.1f} GFLOP/s")

    # forward (eval, no grad), batch 1 and batch B
    model.eval()
    rows = []
    for b in sorted({1, B}):
        x = torch.rand(b, 1, T, S, S, device=device)
        def fwd():
            with torch.no_grad(), amp: model(x)
        t, ts = timed(fwd, device, args.repeats)
        rows.append((f"forward, batch {b}", t / b, FWD_GFLOP_PER_CLIP / gemm, f"{b / t:.2f} clips/s", ts))
    mem_fwd = peak_memory_mb(device)

    # training step: forward + backward + AdamW, batch B
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3)
    x = torch.rand(B, 1, T, S, S, device=device)
    flow_t = torch.randn(B, T - 1, 2, S, S, device=device)
    ldm_t = torch.rand(B, T - 1, cfg.landmarks, 2, device=device) * S
    y = torch.randint(0, cfg.classes, (B,), device=device)
    def step():
        with amp: loss = stand_in_loss(model(x), flow_t, ldm_t, y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    t, ts = timed(step, device, args.repeats)
    rows.append((f"training step, batch {B}", t / B, STEP_GFLOP_PER_CLIP / gemm, f"{t:.2f} s/step", ts))
    mem_train = peak_memory_mb(device)

    print("\n| measure | s per clip | roofline s per clip | x roofline | throughput | runs (s) |\n|---|---|---|---|---|---|")
    for name, per_clip, roof, thr, ts in rows:
        print(f"| {name} | {per_clip:.3f} | {roof:.3f} | {per_clip / roof:.2f} | {thr} | {', '.join(f'{v:.2f}' for v in ts)} |")
    print(f"\npeak memory: {mem_fwd:.0f} MiB after the forward runs, {mem_train:.0f} MiB after training (batch {B})")

    if args.profile:
        model.eval()
        x1 = torch.rand(1, 1, T, S, S, device=device)
        total, times = module_split(model, x1)
        print(f"\nforward of one clip by module ({total:.3f} s in all; nested rows are inside flow_head):")
        print("| module | s | share |\n|---|---|---|")
        for name, t in sorted(times.items(), key=lambda kv: -kv[1]):
            if t / total >= 0.01: print(f"| {name} | {t:.3f} | {100 * t / total:.0f}% |")
        model.train()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]
                                    + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])) as prof:
            step()
        print(f"\none training step (batch {B}) by operator (torch.profiler, self time):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("model", "flowhead", "correlation"), default="model")
    p.add_argument("--preset", default="released")
    p.add_argument("--batch", type=int, default=4, help="clips per training step (and the larger forward batch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run under torch.autocast(bfloat16)")
    p.add_argument("--channels-last", action="store_true", help="convert the model to channels_last memory format")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the module / operator split")
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.part == "correlation": bench_correlation(device, args.repeats)
    elif args.part == "flowhead": bench_flowhead(device, args.repeats, args.batch)
    else: bench_model(args, device)


if __name__ == "__main__":
    main()
