"""Throughput of `mol-prepare`'s pipeline: videos per minute, and where the time goes.

Writes a CASME II-shaped tree of real-face videos (640x480 frames, a ~300 px face, like CASME II's raw frames),
prepares it with `prepare_index` (the code behind `mol-prepare`) and prints a markdown table.

    .venv/bin/python benchmarks/bench_prepare.py --videos 4 --frames 40 --workers 0 1
    .venv/bin/python benchmarks/bench_prepare.py --videos 16 --frames 66 --workers 0 --flow opencv torch
    .venv/bin/python benchmarks/bench_prepare.py --videos 8 --frames 66 --workers 0 --flow torch --detect-once --first-box --work

With 66 frames per video (CASME II's raw average: 8 clips, 56 flow pairs) the last column extrapolates the measured
wall time per video to a CASME II-sized preparation of 255 videos (a rate times a count, not a run of 255 videos).
`--detect-once` also times PrepareSettings(redetect=False) (detect on the first frame, then the box follows the face),
`--first-box` PrepareSettings(redetect=False, track=False) (the first box on every frame). `--work` re-solves the flow
pairs of the first two prepared videos with `tvl1_flow_torch(..., stats=...)` (untimed) and adds two columns: TV-L1
iterations per pair (summed over the pyramid's levels) and the mean absolute difference between the two aligned frames
of a pair (grey levels): how much motion, real or from a wobbling alignment, the solver has to explain.
`--out FILE` also writes the rows, the command and the machine to a JSON file; the benchmarks README's table of the
detection modes is generated from `benchmarks/prepare_speed.json` by readme_tables.py. When FILE already holds a run of
the same command, that run's summary (date, code, machine, minutes per detection mode) moves to the new file's
`earlier` list, so the spread between runs on this shared VM stays on record.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from mol_edu.datasets import frame_number, read_casme2, write_demo_tree
from mol_edu.core import atomic_write_text, environment_info
from mol_edu.faces import clip_indices
from mol_edu.tvl1 import tvl1_flow_torch
from mol_edu.alignment import PrepareSettings, face_video
from mol_edu.prepare import clip_pairs, prepare_index


FACE_STEP = (0.3, -0.15)   # px per frame (dx, dy) that the benchmark's faces move; stored with the results


def write_tree(root, videos, frames, H=480, W=640, face=300):
    root = write_demo_tree(root, "casme2", subjects=videos, videos=1, frames=frames, size=(8, 8))
    rng = np.random.default_rng(0)
    dirs = sorted((root / "CASME2_RAW_selected").glob("sub*/EP*"))
    for i, d in enumerate(dirs):
        vid = face_video(frames, ("astronaut", "grace_hopper")[i % 2], size=face, step=FACE_STEP)
        canvas = np.full((H, W, 3), 110, np.uint8) + rng.integers(0, 20, (H, W, 3), dtype=np.uint8)
        top, left = (H - face) // 2, (W - face) // 2
        for f, img in zip(sorted(d.iterdir(), key=frame_number), vid):
            c = canvas.copy()
            c[top:top + face, left:left + face] = img
            cv2.imwrite(str(f), c, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root


def summary(run: dict) -> dict:
    "What a later run keeps of an earlier one: when, which code, which machine, and the minutes of each detection mode."
    env = run["environment"]
    return {"date": run["date"], "git_commit": env["git_commit"], "cpu": env["cpu"], "cpu_capability": env["cpu_capability"],
            "note": run["note"], "load_average": [run["load_average"][0][0], run["load_average"][1][0]],
            "minutes_255_videos": {r["detection"]: r["minutes_255_videos"] for r in run["rows"]}}


def earlier_runs(path: Path, command: str) -> list:
    "The earlier runs of `command` recorded in `path` (the run it holds first), or [] for a new file or another command."
    if not path.exists(): return []
    old = json.loads(path.read_text())
    return [summary(old)] + old.get("earlier", []) if old.get("command") == command else []


def flow_work(out: Path, clip_length: int, videos: int = 2) -> tuple:
    "(TV-L1 iterations per pair, mean |frame b - frame a|) over the clip pairs of the first `videos` prepared videos."
    its, diffs = [], []
    for d in sorted((out / "videos").iterdir())[:videos]:
        fr = np.load(d / "frames.npy", allow_pickle=False)
        idx = clip_indices(len(fr), clip_length)
        a, b = clip_pairs(idx)
        st = {}
        tvl1_flow_torch(torch.from_numpy(fr[a]), torch.from_numpy(fr[b]), batch_size=4, stats=st)
        its.append(sum(st.values()) / len(a))
        diffs.append(float(np.abs(fr[b].astype(np.float32) - fr[a]).mean()))
    return float(np.mean(its)), float(np.mean(diffs))


def detection(s: PrepareSettings) -> str:
    return "every frame" if s.redetect else ("once, box follows" if s.track else "once, first box")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=40, help="frames per video")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="0 = every core")
    ap.add_argument("--detect-once", action="store_true", help="also time PrepareSettings(redetect=False)")
    ap.add_argument("--first-box", action="store_true", help="also time PrepareSettings(redetect=False, track=False)")
    ap.add_argument("--work", action="store_true", help="add TV-L1 iterations per pair and the pairs' frame difference")
    ap.add_argument("--flow", nargs="+", default=["opencv"], choices=["opencv", "torch"], help="TV-L1 methods to time")
    ap.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    ap.add_argument("--note", default="", help="how the machine was used during the run, stored with the results")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        root = write_tree(tmp / "casme2", a.videos, a.frames)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = read_casme2(root)
        runs = [(w, PrepareSettings(flow_method=f)) for f in a.flow for w in a.workers]
        if a.detect_once: runs += [(a.workers[0], PrepareSettings(redetect=False, flow_method=f)) for f in a.flow]
        if a.first_box: runs += [(a.workers[0], PrepareSettings(redetect=False, track=False, flow_method=f)) for f in a.flow]
        load_start, rows = os.getloadavg(), []
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
              f"{load_start[0]:.2f}; {a.videos} videos x {a.frames} frames of 640x480, 144x144 aligned")
        extra = " TV-L1 iterations/pair | pair difference |" if a.work else ""
        print("| workers | detect | flow | videos/min | s/video (wall) | detection | landmarks | alignment | TV-L1 | read | 255 videos |"
              + extra)
        print("|---|---|---|---|---|---|---|---|---|---|---|" + "---|---|" * a.work)
        for w, s in runs:
            out = tmp / f"out{w}{s.redetect}{s.track}{s.flow_method}"
            t = time.perf_counter()
            summ = prepare_index(index, out, s, workers=w, progress=False)
            wall = time.perf_counter() - t
            assert len(summ["done"]) == a.videos, summ["skipped"]
            tm = summ["timings"]
            tot = sum(tm.values())
            share = {k: 100 * v / tot for k, v in tm.items()}
            its, diff = flow_work(out, s.clip_length) if a.work else (None, None)
            work = f" {its:.0f} | {diff:.1f} |" if a.work else ""
            rows.append({"workers": summ["workers"], "detection": detection(s), "flow": s.flow_method,
                         "videos_per_min": 60 * a.videos / wall, "seconds_per_video": wall / a.videos,
                         "shares": {k: v / tot for k, v in tm.items()}, "minutes_255_videos": 255 * wall / a.videos / 60,
                         "tvl1_iterations_per_pair": its, "pair_difference": diff})
            print(f"| {summ['workers']} | {detection(s)} | {s.flow_method} | "
                  f"{60 * a.videos / wall:.2f} | {wall / a.videos:.1f} | {share['detect']:.0f}% | {share['landmarks']:.1f}% | "
                  f"{share['align']:.1f}% | {share['flow']:.0f}% | {share['read']:.1f}% | "
                  f"{255 * wall / a.videos / 60:.1f} min |{work}", flush=True)
        if a.out:
            argv = [x for i, x in enumerate(sys.argv[1:]) if x != "--note" and sys.argv[i:i + 1] != ["--note"]]
            command = "python benchmarks/bench_prepare.py " + " ".join(shlex.quote(x) for x in argv)
            atomic_write_text(a.out, json.dumps({"command": command, "date": time.strftime("%Y-%m-%d"), "note": a.note,
                                                 "videos": a.videos, "frames": a.frames, "face_step_px": list(FACE_STEP),
                                                 "pairs_per_video": int(clip_pairs(clip_indices(a.frames))[0].size),
                                                 "rows": rows, "earlier": earlier_runs(a.out, command),
                                                 "environment": environment_info("cpu"),
                                                 "load_average": [load_start, os.getloadavg()]}, indent=1) + "\n")
            print(f"-> {a.out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
