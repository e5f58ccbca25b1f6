"""TV-L1 flow at mol-prepare's size (144 x 144): pairs per second of mol_edu.tvl1.tvl1_flow_torch against OpenCV's
cv2.optflow.DualTVL1OpticalFlow (same default settings, same pairs, same run).

Usage: .venv/bin/python benchmarks/bench_tvl1.py [--clips 4] [--faces 2] [--size 144] [--batch 4 30]
       [--modes threads:1 threads:2 processes:2] [--device cpu|cuda] [--out benchmarks/tvl1_results.json]

Pairs: consecutive frames of synthetic clips (mol_edu.synthetic, the whole 144 canvas view, 7 pairs per clip, with
exact flow) and warped face photos (mol_edu.tvl1.face_pair). Modes: `threads:K` runs each method in this process
with K threads (torch.set_num_threads / cv2.setNumThreads); `processes:K` splits the pairs over K fresh processes of
one thread each, the way `mol-prepare --workers K` runs OpenCV (their start-up and imports are not timed). torch is
timed per batch size in `--batch` (pairs solved together). Prints the machine (CPU model, threads, load average
before and after), a table, agreement with OpenCV and with the exact flow, and the time a CASME II-sized
preparation's flow would take; writes the numbers to `--out` (JSON).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# A CASME II-sized preparation: 255 videos, ~66 raw frames each on average, cut by the release's rule into
# 66 // 8 = 8 clips of 8 frames, 7 flow pairs per clip (benchmarks/README.md, "Preparing real data").
CASME2_VIDEOS, CASME2_PAIRS_PER_VIDEO, TARGET_SECONDS = 255, 8 * 7, 15 * 60


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def make_pairs(clips: int, faces: int, size: int):
    "prev, nxt (P, size, size) uint8 and the exact flow (P, 2, size, size)."
    from mol_edu.synthetic import SyntheticMicroExpressions
    from mol_edu.tvl1 import face_pair
    ds = SyntheticMicroExpressions(subjects=max(1, clips // 5 + 1), videos_per_class=1, size=size, view="canvas")
    prev, nxt, flow = [], [], []
    for i in range(clips):
        c = ds.render(i * max(1, len(ds) // max(clips, 1)))
        prev.append(c.frames[:-1]); nxt.append(c.frames[1:]); flow.append(c.flow)
    for k in range(faces):
        p, n, f = face_pair(("astronaut", "grace_hopper")[k % 2], size=size, angle=0.5 + 0.5 * k, shift=(0.4, -0.3 * k))
        prev.append(p[None]); nxt.append(n[None]); flow.append(f[None])
    return np.concatenate(prev), np.concatenate(nxt), np.concatenate(flow)


def run_method(method: str, prev, nxt, batch: int, device: str = "cpu"):
    "Flow of every pair and the wall and CPU seconds it took."
    from mol_edu.tvl1 import tvl1_flow_opencv, tvl1_flow_torch
    w0, c0 = time.perf_counter(), time.process_time()
    if method == "opencv":
        flow = tvl1_flow_opencv(prev, nxt)
    else:
        p, n = torch.from_numpy(prev).to(device), torch.from_numpy(nxt).to(device)
        flow = tvl1_flow_torch(p, n, batch_size=batch)
        if device == "cuda": torch.cuda.synchronize()
        flow = flow.cpu().numpy()
    return flow, time.perf_counter() - w0, time.process_time() - c0


def warm_up(device: str):
    from mol_edu.tvl1 import tvl1_flow_torch
    x = torch.randint(0, 255, (2, 48, 48), dtype=torch.uint8, device=device)
    tvl1_flow_torch(x, x.roll(1, -1))


def worker(args):
    "Child process of a `processes:K` mode: one thread, its share of the pairs, prints its timing as JSON."
    import cv2
    torch.set_num_threads(1); cv2.setNumThreads(1)
    prev, nxt = np.load(args.worker_pairs / "prev.npy"), np.load(args.worker_pairs / "nxt.npy")
    share = slice(args.worker_index, None, args.worker_count)
    warm_up("cpu")
    _, wall, cpu = run_method(args.worker_method, prev[share], nxt[share], args.worker_batch)
    print(json.dumps({"wall": wall, "cpu": cpu, "pairs": len(prev[share])}))


def in_processes(method: str, k: int, folder: Path, batch: int) -> tuple:
    "Run `method` over the saved pairs in k single-thread processes; (wall = slowest worker, summed CPU)."
    cmd = [sys.executable, __file__, "--worker-pairs", str(folder), "--worker-method", method,
           "--worker-count", str(k), "--worker-batch", str(batch)]
    procs = [subprocess.Popen(cmd + ["--worker-index", str(i)], stdout=subprocess.PIPE, text=True) for i in range(k)]
    out = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    if any(p.returncode for p in procs): raise SystemExit(f"a {method} worker failed")
    return max(o["wall"] for o in out), sum(o["cpu"] for o in out)


def epe(a, b) -> float:
    return float(np.sqrt(((a - b) ** 2).sum(1)).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=4); ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--size", type=int, default=144); ap.add_argument("--batch", type=int, nargs="+", default=[4, 30])
    ap.add_argument("--modes", nargs="+", default=["threads:1", "threads:2", "processes:2"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("tvl1_results.json"))
    for name, kind in (("pairs", Path), ("method", str), ("index", int), ("count", int), ("batch", int)):
        ap.add_argument(f"--worker-{name}", type=kind, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_pairs is not None: return worker(args)

    import cv2
    from mol_edu.tvl1 import TVL1Settings
    load_before = os.getloadavg()
    prev, nxt, exact = make_pairs(args.clips, args.faces, args.size)
    P = len(prev)
    machine = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch": torch.__version__, "opencv": cv2.__version__,
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "device": args.device,
               "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
               "load_average_before": [round(x, 2) for x in load_before]}
    print(f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, torch {machine['torch']} "
          f"({machine['cpu_capability']}), OpenCV {machine['opencv']}, device {args.device}"
          + (f" ({machine['gpu']})" if machine["gpu"] else "") + f"; load average before {machine['load_average_before']}")
    print(f"pairs: {P} at {args.size}x{args.size} ({args.clips} synthetic clips x 7 + {args.faces} warped faces); "
          f"settings {TVL1Settings().key()}")
    rows, flows = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "prev.npy", prev); np.save(Path(tmp) / "nxt.npy", nxt)
        for mode in args.modes:
            kind, k = mode.split(":"); k = int(k)
            runs = [("opencv", 1)] + [("torch", b) for b in args.batch]
            if args.device == "cuda" and kind == "processes": runs = runs[:1]   # the GPU is not split over processes
            for method, batch in runs:
                if kind == "threads":
                    torch.set_num_threads(k); cv2.setNumThreads(k)
                    if method == "torch": warm_up(args.device)
                    flow, wall, cpu = run_method(method, prev, nxt, batch, args.device)
                    flows.setdefault(method, flow)
                else:
                    wall, cpu = in_processes(method, k, Path(tmp), batch)
                row = {"mode": mode, "method": method, "batch": batch if method == "torch" else None, "pairs": P,
                       "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "pairs_per_s": round(P / wall, 3),
                       "load_average_1min": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(f"  {mode:12s} {method:6s} batch {str(row['batch'] or '-'):>3s}: {row['pairs_per_s']:6.2f} pairs/s "
                      f"(wall {wall:6.2f} s, CPU {cpu:6.2f} s, load {row['load_average_1min']})", flush=True)
    agreement = {"torch_vs_opencv_epe": round(epe(flows["torch"], flows["opencv"]), 4),
                 "opencv_vs_exact_epe": round(epe(flows["opencv"], exact), 4),
                 "torch_vs_exact_epe": round(epe(flows["torch"], exact), 4),
                 "zero_flow_vs_exact_epe": round(epe(0 * exact, exact), 4)}
    print("agreement (mean end-point error, px):", agreement)
    total = CASME2_VIDEOS * CASME2_PAIRS_PER_VIDEO
    need = total / TARGET_SECONDS
    best = max(rows, key=lambda r: r["pairs_per_s"])
    best_cv = max((r for r in rows if r["method"] == "opencv"), key=lambda r: r["pairs_per_s"])
    casme = {"pairs": total, "target_s": TARGET_SECONDS, "needed_pairs_per_s": round(need, 2),
             "best": {k: best[k] for k in ("mode", "method", "batch", "pairs_per_s")},
             "best_minutes": round(total / best["pairs_per_s"] / 60, 1),
             "best_opencv_minutes": round(total / best_cv["pairs_per_s"] / 60, 1)}
    print(f"CASME II-sized flow at {args.size}x{args.size} ({CASME2_VIDEOS} videos x {CASME2_PAIRS_PER_VIDEO} pairs = {total} pairs) in 15 min needs "
          f"{need:.1f} pairs/s; best here {best['pairs_per_s']:.2f} pairs/s ({best['method']}, {best['mode']}) = "
          f"{casme['best_minutes']} min; OpenCV's best {casme['best_opencv_minutes']} min")
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average after {machine['load_average_after']}")
    result = {"command": " ".join(["benchmarks/bench_tvl1.py"] + sys.argv[1:]), "machine": machine,
              "size": args.size, "pairs": P, "rows": rows, "agreement": agreement, "casme2": casme}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
