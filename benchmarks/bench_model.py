"""Speed of MOL (and of its flow head and correlation) on this machine, against the GEMM roofline.

    .venv/bin/python benchmarks/bench_model.py                      # released preset, fp32 CPU: the table for the README
    .venv/bin/python benchmarks/bench_model.py --part correlation   # the correlation variants at the released sizes
    .venv/bin/python benchmarks/bench_model.py --part flowhead      # the flow head alone: conv_transpose2d vs 3x3 conv + pixel_shuffle
    .venv/bin/python benchmarks/bench_model.py --device cuda        # the same on a GPU (add --bf16 for autocast)

Every timing is the median of `--repeats` runs after one warm-up run. The GEMM rate (a 2048x2048 fp32 matmul) is
measured in the same run, so that the roofline (FLOPs / GEMM rate) describes the machine as it was during the run.
Peak memory on the CPU is the process's peak resident set size (ru_maxrss), on a GPU torch's peak allocation.

Before / after in one run (the results file `benchmarks/model_speed.json`, the table in benchmarks/README.md and
chapter 05 read it):

    .venv/bin/python benchmarks/bench_model.py --threads 1 2 --predictor conv gemm --malloc default reuse --repeats 5 --out benchmarks/model_speed.json
    .venv/bin/python benchmarks/bench_model.py --part predictors --threads 1 --out benchmarks/model_speed.json

With several `--predictor` methods the runs alternate (one run of each method per round, the GEMM rate measured
again every round), so a load that changes during the benchmark falls on every method alike. The `--malloc`
policies run one after the other (each with its own alternating rounds), since a run under glibc's default policy
hands the memory back that the other policy keeps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from machine import machine as machine_record

ROOT = Path(__file__).resolve().parents[1]

def count_gflop(model, x, cfg):
    "GFLOP of one clip's forward and of its forward + backward (torch.utils.flop_counter, batch 1, plain convs)."
    from torch.utils.flop_counter import FlopCounterMode
    model.flow_head.use_predictor("conv")
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc: model(x)
    fwd = fc.get_total_flops() / 1e9
    model.train()
    with FlopCounterMode(display=False) as fc:
        out = model(x); (out.logits.sum() + out.flow.sum() + out.landmarks.sum()).backward()
    model.zero_grad(set_to_none=True)
    model.flow_head.use_predictor("auto")
    return fwd, fc.get_total_flops() / 1e9


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


# ---------------------------------------------------------------- the flow predictors alone
def bench_predictors(args, device):
    "predict_flow_l at the released sizes, plain conv (cat + conv2d) against matrix product + col2im, per level."
    from mol_edu.heads import FlowHead, FlowPredictor
    from mol_edu.model import MOLConfig
    cfg = MOLConfig.preset(args.preset)
    head, S, N = FlowHead(), cfg.image_size, args.batch * (cfg.frames - 1)
    rows = []
    print(f"predict_flow_l, {N} pairs, {torch.get_num_threads()} thread(s)\n| level | C in | size | method | forward (ms) | forward + backward (ms) |\n|---|---|---|---|---|---|")
    for l, c_in in zip(head.levels, head.decoder_widths):
        if S >> l < 8: continue  # the coarse levels take well under a millisecond
        g = torch.Generator().manual_seed(l)
        x = torch.randn(N, c_in, S >> l, S >> l, generator=g).to(device)
        xg = x.clone().requires_grad_()
        preds = {m: FlowPredictor(c_in, m).to(device) for m in ("conv", "gemm")}
        preds["gemm"].weight = preds["conv"].weight
        def fwd(p):
            with torch.no_grad(): p(x)
        fwd_runs = timed_alternating({m: (lambda p=p: fwd(p)) for m, p in preds.items()}, device, args.repeats)
        bwd_runs = timed_alternating({m: (lambda p=p: p(xg).sum().backward()) for m, p in preds.items()}, device, args.repeats)
        for m in preds:
            row = {"level": l, "in_channels": c_in, "size": S >> l, "method": m,
                   "fwd_ms": 1e3 * statistics.median(fwd_runs[m]), "fwd_bwd_ms": 1e3 * statistics.median(bwd_runs[m]),
                   "fwd_runs_ms": [1e3 * t for t in fwd_runs[m]], "fwd_bwd_runs_ms": [1e3 * t for t in bwd_runs[m]]}
            rows.append(row)
            print(f"| {l} | {c_in} | {S >> l} | {m} | {row['fwd_ms']:.1f} | {row['fwd_bwd_ms']:.1f} |")
    return {"preset": args.preset, "pairs": N, "threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows}


def timed_alternating(fns, device, repeats, faults=None):
    "{name: seconds of each of `repeats` runs}: one warm-up each, then rounds that run every fn once, in turn."
    for fn in fns.values(): fn(); sync(device)
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter(); fn(); sync(device); out[name].append(time.perf_counter() - t0)
            if faults is not None: faults.setdefault(name, []).append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return out


# ---------------------------------------------------------------- the whole model
def stand_in_loss(out, flow_t, ldm_t, y):
    "The joint loss's shape (CE + 10 flow MSE + 0.1 landmark L1): enough to time a training step."
    return F.cross_entropy(out.logits, y) + 10 * F.mse_loss(out.flow, flow_t) + 0.1 * (out.landmarks - ldm_t).abs().mean()


def module_split(model, x, repeats=3):
    "Forward seconds in each top-level child of MOL and of its flow head (hooks; median of `repeats` after a warm-up)."
    starts, handles, runs = {}, [], []
    named = [(n, m) for n, m in model.named_children()]
    if hasattr(model, "flow_head"): named += [(f"flow_head.{n}", m) for n, m in model.flow_head.named_children()]
    for name, mod in named:
        def pre(m, i, name=name): starts[name] = time.perf_counter()
        def post(m, i, o, name=name): runs[-1][name] = runs[-1].get(name, 0.0) + time.perf_counter() - starts[name]
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    totals = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            runs.append({})
            t0 = time.perf_counter(); model(x); totals.append(time.perf_counter() - t0)
    for h in handles: h.remove()
    runs, totals = runs[1:], totals[1:]
    return statistics.median(totals), {name: statistics.median(r.get(name, 0.0) for r in runs) for name in runs[0]}


def bench_model(args, device):
    "Forward (batch 1 and B) and training step per thread count and variant: predictor methods alternate, malloc policies in turn."
    from mol_edu.model import MOL, MOLConfig
    cfg = MOLConfig.preset(args.preset)
    torch.manual_seed(0)
    model = MOL(cfg).to(device)
    if args.channels_last: model.flow_head.to(memory_format=torch.channels_last)  # 4-D weights only (the MER head is 3-D)
    T, S, B = cfg.frames, cfg.image_size, args.batch
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else torch.autocast(device.type, enabled=False)
    from mol_edu.core import reuse_freed_memory
    methods = [f"{p}/{m}" for m in args.malloc for p in args.predictor]   # variant = predictor method / malloc policy
    x1, xB = torch.rand(1, 1, T, S, S, device=device), torch.rand(B, 1, T, S, S, device=device)
    flow_t = torch.randn(B, T - 1, 2, S, S, device=device)
    ldm_t = torch.rand(B, T - 1, cfg.landmarks, 2, device=device) * S
    y = torch.randint(0, cfg.classes, (B,), device=device)
    opts = {m: torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-3) for m in methods}
    fwd_gflop, step_gflop = count_gflop(model, x1, cfg)
    print(f"preset {args.preset}: {fwd_gflop:.1f} GFLOP forward, {step_gflop:.1f} GFLOP forward + backward per clip")

    def with_method(m, fn):
        def run():
            predictor, malloc = m.split("/")
            model.flow_head.use_predictor(predictor); reuse_freed_memory(malloc == "reuse"); fn()
        return run
    def fwd(x):
        def run():
            with torch.no_grad(), amp: model(x)
        return run
    def step(m):
        def run():
            with amp: loss = stand_in_loss(model(xB), flow_t, ldm_t, y)
            opts[m].zero_grad(set_to_none=True); loss.backward(); opts[m].step()
        return run

    results = {"gflop_per_clip": {"forward": fwd_gflop, "forward_backward": step_gflop}, "rows": [], "modules": {}, "ops": {}}
    for threads in args.threads or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        gemms = []
        def gemm_once(): gemms.append(gemm_rate(device, 1))
        faults, f1, fB, st = {"forward_b1": {}, "forward_bB": {}, "step": {}}, {}, {}, {}
        for malloc in args.malloc:   # one policy at a time: a default-policy run would hand the other's pages back
            block = [m for m in methods if m.endswith("/" + malloc)]
            model.eval()
            f1.update(timed_alternating({"GEMM rate": gemm_once, **{m: with_method(m, fwd(x1)) for m in block}}, device, args.repeats, faults["forward_b1"]))
            fB.update(timed_alternating({"GEMM rate": gemm_once, **{m: with_method(m, fwd(xB)) for m in block}}, device, args.repeats, faults["forward_bB"]))
            mem_fwd = peak_memory_mb(device)
            model.train()
            st.update(timed_alternating({"GEMM rate": gemm_once, **{m: with_method(m, step(m)) for m in block}}, device, args.repeats, faults["step"]))
        gemm = statistics.median(gemms)
        print(f"\nmachine: {machine(device)} | torch {torch.__version__} | preset {args.preset} | "
              f"fp32 GEMM {gemm:.1f} GFLOP/s (median of {len(gemms)}, {min(gemms):.1f}-{max(gemms):.1f})")
        print("| predictor / malloc | forward b1 (s/clip) | forward b%d (s/clip) | step b%d (s) | x roofline fwd b1 / b%d / step | page faults per step |" % (B, B, B))
        print("|---|---|---|---|---|---|")
        for m in methods:
            r = {"threads": threads, "variant": m, "predictor": m.split("/")[0], "malloc": m.split("/")[1], "batch": B,
                 "page_faults": {k: statistics.median(v[m]) for k, v in faults.items()}, "gemm_gflops": gemm, "gemm_runs_gflops": gemms,
                 "forward_b1_s": statistics.median(f1[m]), "forward_bB_s_per_clip": statistics.median(fB[m]) / B,
                 "step_s": statistics.median(st[m]),
                 "runs": {"forward_b1": f1[m], "forward_bB": fB[m], "step": st[m]}}
            r["x_roofline"] = {"forward_b1": r["forward_b1_s"] * gemm / fwd_gflop,
                               "forward_bB": r["forward_bB_s_per_clip"] * gemm / fwd_gflop,
                               "step": r["step_s"] / B * gemm / step_gflop}
            results["rows"].append(r)
            xr = r["x_roofline"]
            print(f"| {m} | {r['forward_b1_s']:.3f} | {r['forward_bB_s_per_clip']:.3f} | {r['step_s']:.2f} | "
                  f"{xr['forward_b1']:.2f} / {xr['forward_bB']:.2f} / {xr['step']:.2f} | {r['page_faults']['step']:.0f} |")
        print(f"peak memory: {mem_fwd:.0f} MiB after the forward runs, {peak_memory_mb(device):.0f} MiB after training")
        if not args.profile: continue
        for m in methods:
            model.flow_head.use_predictor(m.split("/")[0]); reuse_freed_memory(m.endswith("/reuse"))
            model.eval()
            total, times = module_split(model, x1)
            shares = {name: t / total for name, t in sorted(times.items(), key=lambda kv: -kv[1])}
            results["modules"][f"{threads}/{m}"] = {"forward_b1_s": total, "shares": shares}
            print(f"\n{threads} thread(s), {m}: forward of one clip by module ({total:.3f} s in all; "
                  "nested rows are inside flow_head):\n| module | share |\n|---|---|")
            for name, share in shares.items():
                if share >= 0.02: print(f"| {name} | {100 * share:.0f}% |")
            model.train()
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]
                                        + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])) as prof:
                step(m)()
            ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
            all_us = sum(e.self_cpu_time_total for e in ev)
            results["ops"][f"{threads}/{m}"] = {e.key: e.self_cpu_time_total / all_us for e in ev[:10]}
            print(f"one training step (batch {B}) by operator, share of self time:\n| operator | share |\n|---|---|")
            for e in ev[:8]: print(f"| {e.key} | {100 * e.self_cpu_time_total / all_us:.0f}% |")
    model.flow_head.use_predictor("auto"); reuse_freed_memory(False)
    return results


def write_results(path, key, value, args, load0, device):
    "Put `value` under `key` in the results file `path` (other keys kept), with the machine and the command."
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    argv = [str(path.resolve().relative_to(ROOT)) if a == args.out else a for a in sys.argv[1:]]   # --out from the root
    value = {**value, "machine": machine_record(load0, device.type), "command": "python benchmarks/bench_model.py " + " ".join(argv)}
    data[key] = value
    tmp = path.with_suffix(".tmp"); tmp.write_text(json.dumps(data, indent=1) + "\n"); os.replace(tmp, path)
    print(f"wrote {key} to {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("model", "flowhead", "correlation", "predictors"), default="model")
    p.add_argument("--preset", default="released")
    p.add_argument("--batch", type=int, default=4, help="clips per training step (and the larger forward batch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=None, help="torch threads, one or more (default: torch's choice)")
    p.add_argument("--predictor", nargs="+", default=["auto"], choices=("auto", "gemm", "conv"),
                   help="the flow predictors' method(s); several are measured alternately in one run")
    p.add_argument("--malloc", nargs="+", default=["default"], choices=("default", "reuse"),
                   help="glibc malloc policy: its defaults, or mol_edu.core.reuse_freed_memory (as mol-train on a CPU)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run under torch.autocast(bfloat16)")
    p.add_argument("--channels-last", action="store_true", help="convert the model to channels_last memory format")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the module / operator split")
    p.add_argument("--out", default=None, help="results file to update (the model part and the predictors part)")
    args = p.parse_args()
    load0 = os.getloadavg()
    if args.threads: torch.set_num_threads(args.threads[0])
    device = torch.device(args.device)
    if args.part == "correlation": bench_correlation(device, args.repeats)
    elif args.part == "flowhead": bench_flowhead(device, args.repeats, args.batch)
    elif args.part == "predictors":
        res = bench_predictors(args, device)
        if args.out: write_results(args.out, "predictors", res, args, load0, device)
    else:
        res = bench_model(args, device)
        if args.out: write_results(args.out, "model", {"preset": args.preset, "repeats": args.repeats, **res}, args, load0, device)


if __name__ == "__main__":
    main()
