"""The prepared GPU check: one command on a machine with a CUDA GPU, one JSON (and a log) back.

    python3 tools/gpu_check.py --out DIR            # on the GPU machine (= make gpu-check OUT=DIR)
    python3 tools/gpu_check.py --out DIR --dry      # the CPU rehearsal of the same code paths (CI runs it)

Steps, each in its own process with its own time budget, each recorded in DIR/gpu_check.json even when it fails:

  install         the wheels of tools/gpu_wheels.txt (from .whl/) with `pip install --no-index --no-deps --target`
                  into a temporary folder, and the repository root, go on PYTHONPATH; the machine's own packages
                  (its CUDA PyTorch above all) are neither resolved nor changed. Then an import check.
  cuda_tests      `pytest -m cuda` over the test files that carry the mark
  cuda_notebooks  chapters 04, 05 and 23 with their `#| cuda` cells, through tests/test_notebooks.py
  model_speed     the released-preset MOL: forward and training step (Trainer.step) at batch 32 in fp32, TF32 and
                  bf16 autocast, with and without channels-last and torch.compile: clips/s, peak GPU memory, and
                  the achieved FLOP rate (FlopCounterMode) against a bf16 matmul measured in the same run
  loso_fold       one LOSO fold of the released recipe (1000 iterations x 32 clips, 128 x 128, mol-train's synthetic
                  corpus) with the fastest settings of model_speed, once with the temporal-normalised expression
                  head and once with the released one (mer_norm "none"): time, clips/s, held-out scores against
                  chance, data-loader waits and the GPU's busy share over a few profiled steps
  nccl            torchrun --standalone --nproc_per_node=1 running mol-train for a few iterations; it passes
                  only if mol-train took the distributed path (init_distributed: nccl on CUDA, gloo on CPU)

The script exits 0 when every step passed, 1 when one failed, 2 (with one line on stderr) when it cannot start:
no CUDA device without --dry, a PyTorch outside settings.ini's range, missing or doubled wheels.
"""
from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JSON_NAME, LOG_NAME = "gpu_check.json", "gpu_check.log"
WHEEL_LIST = ROOT / "tools" / "gpu_wheels.txt"
STEPS = ("install", "cuda_tests", "cuda_notebooks", "model_speed", "loso_fold", "nccl")

# seconds per step; a step may also use what the steps before it left unused, never what the later ones need
BUDGETS = {"gpu": dict(install=15, cuda_tests=25, cuda_notebooks=110, model_speed=120, loso_fold=170, nccl=40),
           "dry": dict(install=60, cuda_tests=60, cuda_notebooks=120, model_speed=120, loso_fold=90, nccl=90)}
# dry mode took about 100 s on the shared 2-core development VM; its budgets leave room for a busier machine

# what each mode runs: the GPU sizes of the issue, and a CPU rehearsal small enough for CI
PLAN = {
    "gpu": dict(
        notebooks=("04_correlation", "05_heads", "23_gpu_training"),
        model_preset="released", model_overrides={}, batch=32, warmup=3, repeats=10, matmul_n=8192,
        compile_backend="inductor", compile_variants=6, compile_estimate_s=60.0,
        fold=dict(arch="released", subjects=24, videos_per_class=4, iterations=1000, batch=32, workers=4,
                  render_workers=8, profile_at=100, profile_steps=5),
        nccl=["--arch", "released", "--preset", "released", "--folds", "1", "--iterations", "5", "--subjects", "3",
              "--videos_per_class", "1", "--precision", "bf16"],
        threads=0),
    "dry": dict(
        notebooks=("23_gpu_training",),   # 04 and 05 run in CI anyway (tests/test_notebooks.py); 23 is the GPU chapter
        model_preset="small", model_overrides=dict(flow_width=4, landmark_hidden=64, expression_hidden=64),
        batch=2, warmup=0, repeats=1, matmul_n=256,
        compile_backend="eager", compile_variants=1, compile_estimate_s=10.0,   # inductor on 2 CPU cores: minutes
        fold=dict(arch="small", subjects=4, videos_per_class=1, iterations=3, batch=4, workers=1,
                  render_workers=0, profile_at=1, profile_steps=2),
        nccl=["--arch", "small", "--preset", "cpu", "--folds", "1", "--iterations", "2", "--batch_size", "4",
              "--subjects", "2", "--videos_per_class", "1", "--device", "cpu", "--threads", "1"],
        threads=1),
}
PRECISIONS = ("fp32", "tf32", "bf16")


# ---------------------------------------------------------------- preflight (pure functions, tested directly)
class CheckError(Exception):
    "A state in which the check cannot start; its message is the one line the user sees."


def torch_requirement(settings: Path = ROOT / "settings.ini") -> str:
    "The torch requirement of settings.ini's `requirements`, e.g. 'torch>=2.1,<3'."
    cp = configparser.ConfigParser()
    cp.read(settings)
    reqs = cp["DEFAULT"].get("requirements", "").split()
    found = [r for r in reqs if re.fullmatch(r"torch([<>=!~].*)?", r)]
    if not found: raise CheckError(f"{settings}: no torch requirement in `requirements`")
    return found[0]


def torch_problem(version: str, # torch.__version__, e.g. '2.11.0+cu130'
                  cuda_build: str | None, # torch.version.cuda (None for a CPU build)
                  cuda_available: bool, # torch.cuda.is_available()
                  requirement: str, # from torch_requirement()
                  dry: bool) -> str | None:
    "Why this PyTorch cannot run the check (one line), or None."
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    spec = SpecifierSet(requirement[len("torch"):])
    v = Version(version)
    if not spec.contains(Version(v.public), prereleases=True):
        low = [s for s in spec if s.operator in (">=", ">", "==", "~=")]
        older = any(not s.contains(Version(v.public), prereleases=True) for s in low)
        what = "older than this project supports" if older else "outside the range this project supports"
        return f"torch {version} is {what} (settings.ini requires {requirement})"
    if dry: return None
    if cuda_build is None:
        return f"no CUDA device: torch {version} is a CPU-only build (run on the GPU machine, or pass --dry)"
    if not cuda_available:
        return f"no CUDA device: torch {version} (CUDA {cuda_build}) sees no GPU (run on the GPU machine, or pass --dry)"
    return None


def canonical(name: str) -> str: return re.sub(r"[-_.]+", "-", name).lower()


def read_wheel_list(path: Path = WHEEL_LIST) -> list:
    "[(name, version)] of a wheel list: one NAME==VERSION a line, '#' comments."
    pins = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line: continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        if not m: raise CheckError(f"{path}:{n}: expected NAME==VERSION, got {line!r}")
        pins.append((m.group(1), m.group(2)))
    if not pins: raise CheckError(f"{path}: names no wheel")
    return pins


def find_wheels(folder: Path, pins: list) -> list:
    "The wheel files of `pins` in `folder`; CheckError naming every missing or doubled one."
    have = {}
    for f in sorted(Path(folder).glob("*.whl")) if Path(folder).is_dir() else []:
        parts = f.name[:-4].split("-")
        if len(parts) >= 5: have.setdefault(canonical(parts[0]), []).append((parts[1], f))
    files, missing, doubled = [], [], []
    for name, version in pins:
        entries = have.get(canonical(name), [])
        match = [f for v, f in entries if v == version]
        if not match: missing.append(f"{name}=={version}")
        else: files.append(match[0])
        if len({v for v, _ in entries}) > 1: doubled.append(f"{name} ({', '.join(sorted({v for v, _ in entries}))})")
    where = f"{folder}/" if Path(folder).is_dir() else f"{folder}/ (no such folder)"
    if missing:
        raise CheckError(f"missing wheels in {where}: {', '.join(missing)}; run `make gpu-wheels` where a registry "
                         f"is reachable and carry the folder with the repository")
    if doubled: raise CheckError(f"two versions of a wheel in {folder}/: {'; '.join(doubled)}; keep the listed one only")
    return files


# ---------------------------------------------------------------- small helpers
def now_iso() -> str: return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json(path: Path, obj) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def short(text: str, n: int = 2000) -> str:
    text = str(text).strip()
    return text if len(text) <= n else "..." + text[-n:]


def parse_junit(path: Path) -> dict:
    "Counts and per-test outcomes of a pytest --junitxml file."
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    cases = []
    for c in root.iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            el = c.find(tag)
            if el is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = short(el.get("message") or el.text or "", 3000)
                break
        cases.append({"test": f"{c.get('classname')}::{c.get('name')}", "outcome": outcome,
                      "seconds": float(c.get("time", 0)), "message": message})
    return {"counts": counts, "cases": cases}


def machine_info(dry: bool) -> dict:
    "Python, PyTorch and the device, read once at the start (after the preflight checks)."
    import torch
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torch_file": torch.__file__, "torch_cuda": torch.version.cuda}
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception: info["cpu"] = platform.processor() or None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_count=torch.cuda.device_count(), capability=f"{p.major}.{p.minor}",
                    gpu_memory_gib=round(p.total_memory / 2 ** 30, 1), multiprocessors=p.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
        try:
            q = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw"
            r = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv"], capture_output=True, text=True,
                               timeout=20)
            info["nvidia_smi"] = r.stdout.strip() or short(r.stderr, 300)
        except Exception as e: info["nvidia_smi"] = f"not available: {e}"
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                            timeout=10).stdout.strip() or None
    except Exception: info["git_commit"] = None
    return info


# ---------------------------------------------------------------- the orchestrating parent
class Runner:
    "Runs the steps one after another in child processes, within one overall budget, and keeps the JSON current."
    def __init__(self, args, mode: str, out: Path):
        self.args, self.mode, self.out = args, mode, out
        self.plan, self.budgets = PLAN[mode], dict(BUDGETS[mode])
        self.log = open(out / LOG_NAME, "a", buffering=1)
        self.work = Path(tempfile.mkdtemp(prefix="mol_edu_gpu_check_"))
        self.site = None
        self.report = {"check": "mol_edu GPU check (tools/gpu_check.py)", "mode": mode, "started": now_iso(),
                       "command": " ".join([Path(sys.executable).name, *sys.argv]), "budget_s": args.budget,
                       "steps": {}}

    def say(self, msg: str) -> None:
        print(msg, flush=True)
        self.log.write(msg + "\n")

    def save(self) -> None: write_json(self.out / JSON_NAME, self.report)

    def env(self) -> dict:
        paths = ([str(self.site)] if self.site else []) + [str(ROOT)]
        if os.environ.get("PYTHONPATH"): paths.append(os.environ["PYTHONPATH"])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
                   PYTHONHASHSEED="0")
        env.pop("MOL_EDU_DEVICE", None)
        import torch
        env["MOL_EDU_GPU_CHECK_TORCH"] = torch.__file__   # the install check: the steps must see this same PyTorch
        return env

    def spawn(self, cmd: list, timeout: float) -> tuple:
        "(exit status or None on timeout, seconds) of `cmd` in its own process group, output to the log."
        self.log.write(f"$ {' '.join(map(str, cmd))}\n"); self.log.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=self.env(), stdout=self.log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try: rc = p.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try: os.killpg(p.pid, sig)
                except ProcessLookupError: break
                try: p.wait(timeout=wait); break
                except subprocess.TimeoutExpired: pass
            rc = None
        return rc, time.perf_counter() - t0

    def child(self, step: str, timeout: float) -> dict:
        "Run one step in a child process; its record (status, seconds, error, result)."
        out = self.work / f"{step}.json"
        cmd = [sys.executable, Path(__file__).resolve(), "--child", step, "--mode", self.mode, "--work", self.work,
               "--deadline", f"{time.time() + timeout:.1f}"]
        rc, secs = self.spawn(cmd, timeout)
        result = json.loads(out.read_text()) if out.exists() else {}
        error = result.pop("error", None)
        result.pop("status", None)
        if rc is None: status, error = "timeout", f"stopped after {timeout:.0f} s (its budget)" + (f"; {error}" if error else "")
        elif rc == 0 and error is None: status = "ok"
        else: status, error = "failed", error or f"the step's process exited with status {rc} (see {LOG_NAME})"
        return {"status": status, "seconds": round(secs, 2), "error": error, "result": result}

    def install(self, timeout: float) -> dict:
        "pip install --no-index --no-deps --target (no resolution, nothing of the machine changed), then imports."
        t0 = time.perf_counter()
        res = {"wheels": [f.name for f in self.wheels] if self.wheels else [], "pythonpath": None}
        if self.wheels:
            self.site = Path(self.args.site) if self.args.site else self.work / "site"
            cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                   "--no-cache-dir", "--upgrade", "--target", self.site, *self.wheels]
            res["pip_command"] = " ".join(map(str, cmd))
            rc, _ = self.spawn(cmd, timeout)
            if rc != 0:
                return {"status": "timeout" if rc is None else "failed", "seconds": round(time.perf_counter() - t0, 2),
                        "error": f"pip install --target {self.site} " + ("ran out of time" if rc is None else f"exited with status {rc}"),
                        "result": res}
        else: res["note"] = "dry mode and no wheel folder: the packages of this environment are used"
        res["pythonpath"] = self.env()["PYTHONPATH"]
        rec = self.child("install", max(timeout - (time.perf_counter() - t0), 5))
        rec["result"] = {**res, **rec["result"]}
        rec["seconds"] = round(time.perf_counter() - t0, 2)
        return rec

    def run(self, steps: list) -> int:
        t_start = time.perf_counter()
        deadline = t_start + self.args.budget
        self.save()
        for i, step in enumerate(steps):
            later = sum(self.budgets[s] for s in steps[i + 1:])
            timeout = min(deadline - time.perf_counter() - later, self.args.budget)
            self.say(f"[{time.perf_counter() - t_start:6.1f} s] {step}: up to {max(timeout, 0):.0f} s")
            if timeout < 1:
                rec = {"status": "skipped", "seconds": 0.0, "error": f"no time left in the {self.args.budget:.0f} s budget",
                       "result": {}}
            else: rec = self.install(timeout) if step == "install" else self.child(step, timeout)
            rec = {"status": rec["status"], "seconds": rec["seconds"], "budget_s": self.budgets[step],
                   "timeout_s": round(max(timeout, 0), 1), "error": rec["error"], "result": rec["result"]}
            self.report["steps"][step] = rec
            self.save()
            self.say(f"[{time.perf_counter() - t_start:6.1f} s] {step}: {rec['status']} in {rec['seconds']:.1f} s"
                     + (f": {rec['error']}" if rec["error"] else ""))
        failed = [s for s, r in self.report["steps"].items() if r["status"] != "ok"]
        self.report.update(seconds=round(time.perf_counter() - t_start, 2), finished=now_iso(), failed=failed,
                           ok=not failed)
        self.save()
        if not self.args.keep_work: shutil.rmtree(self.work, ignore_errors=True)
        self.say(f"gpu_check: {len(steps) - len(failed)}/{len(steps)} steps passed in "
                 f"{self.report['seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
                 + f"; report: {self.out / JSON_NAME}")
        return 1 if failed else 0


def preflight(args, mode: str) -> tuple:
    "(machine info, wheel files or None); CheckError on a state in which the check cannot start."
    try: import torch
    except ImportError as e: raise CheckError(f"no PyTorch: {e}")
    problem = torch_problem(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch_requirement(),
                            dry=mode == "dry")
    if problem: raise CheckError(problem)
    pins = read_wheel_list(Path(args.wheel_list))
    folder = Path(args.wheels)
    wheels = None
    if mode == "gpu" or args.wheels_given or folder.is_dir(): wheels = find_wheels(folder, pins)
    return machine_info(mode == "dry"), wheels


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for gpu_check.json and gpu_check.log (created)")
    p.add_argument("--dry", action="store_true", help="CPU rehearsal: small model, a few iterations, the same steps")
    p.add_argument("--wheels", default=None, help="folder of the wheels (default: .whl; with --dry only if it exists)")
    p.add_argument("--wheel-list", default=str(WHEEL_LIST), help="NAME==VERSION list (default: tools/gpu_wheels.txt)")
    p.add_argument("--site", default=None, help="where pip --target puts the wheels (default: a temporary folder)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--budget", type=float, default=None, help="seconds for all steps (default: 480, --dry 600)")
    p.add_argument("--keep-work", action="store_true", help="keep the temporary folder of the steps' own files")
    p.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("gpu", "dry"), help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--ddp-worker", help=argparse.SUPPRESS)
    args, extra = p.parse_known_args(argv)
    if args.ddp_worker: return ddp_worker(Path(args.ddp_worker), [a for a in extra if a != "--"])
    if extra: p.error(f"unrecognised arguments: {' '.join(extra)}")
    if args.child: return run_child(args)
    if not args.out: p.error("--out DIR is required")
    mode = "dry" if args.dry else "gpu"
    args.wheels_given = args.wheels is not None
    args.wheels = args.wheels or str(ROOT / ".whl")
    args.budget = args.budget or (600.0 if args.dry else 480.0)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad: p.error(f"--steps: unknown {bad}; choose from {list(STEPS)}")
    steps = [s for s in STEPS if s in steps]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try: info, wheels = preflight(args, mode)
    except CheckError as e:
        write_json(out / JSON_NAME, {"check": "mol_edu GPU check (tools/gpu_check.py)", "mode": mode,
                                     "started": now_iso(), "ok": False, "preflight": {"status": "failed", "error": str(e)},
                                     "steps": {}})
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    r = Runner(args, mode, out)
    r.wheels = wheels
    r.report["machine"] = info
    r.report["preflight"] = {"status": "ok", "torch_requirement": torch_requirement(),
                             "wheel_list": str(Path(args.wheel_list).relative_to(ROOT) if Path(args.wheel_list).is_relative_to(ROOT) else args.wheel_list)}
    r.say(f"gpu_check ({mode}): {info.get('gpu') or info.get('cpu')}, torch {info['torch']}, "
          f"steps {', '.join(steps)}, budget {args.budget:.0f} s; log: {out / LOG_NAME}")
    return r.run(steps)


# ---------------------------------------------------------------- child processes: one step each
class Step:
    "What a child step knows: its mode, plan, deadline and result dict (saved to the work folder as it grows)."
    def __init__(self, name, mode, work, deadline):
        self.name, self.mode, self.plan, self.work, self.deadline = name, mode, PLAN[mode], Path(work), deadline
        self.result = {}

    def left(self) -> float: return self.deadline - time.time()
    def save(self) -> None: write_json(self.work / f"{self.name}.json", self.result)
    def fail(self, msg: str) -> None: self.result["error"] = msg


STALL_ENV = "GPU_CHECK_STALL"   # comma-separated steps that hang (for the tests of the budget), never set in use


def run_child(args) -> int:
    s = Step(args.child, args.mode, args.work, args.deadline)
    if args.child in os.environ.get(STALL_ENV, "").split(","): time.sleep(3600)
    try: CHILD_STEPS[args.child](s)
    except Exception as e:
        traceback.print_exc()
        s.result["error"] = short(f"{type(e).__name__}: {e}", 1000)
    s.result["status"] = "failed" if s.result.get("error") else "ok"
    s.save()
    return 0 if s.result["status"] == "ok" else 1


def child_install(s: Step) -> None:
    "Import what the steps import; record versions and where each came from."
    import importlib
    mods = {}
    for name in ("torch", "numpy", "fastcore", "nbdev", "execnb", "IPython", "mol_edu", "mol_edu.cli", "mol_edu.model"):
        try:
            m = importlib.import_module(name)
            mods[name] = {"version": getattr(m, "__version__", None), "file": getattr(m, "__file__", None)}
        except Exception as e: mods[name] = {"error": f"{type(e).__name__}: {e}"}
    s.result["imports"] = mods
    bad = [k for k, v in mods.items() if "error" in v]
    if bad: return s.fail(f"cannot import {', '.join(bad)}: " + "; ".join(mods[k]["error"] for k in bad))
    if not str(mods["mol_edu"]["file"]).startswith(str(ROOT)):
        return s.fail(f"mol_edu comes from {mods['mol_edu']['file']}, not from this repository ({ROOT})")
    want = os.environ.get("MOL_EDU_GPU_CHECK_TORCH")
    if want and mods["torch"]["file"] != want:
        s.fail(f"the steps would import torch from {mods['torch']['file']}, not the machine's own {want}")


def run_pytest(s: Step, node_ids: list, extra_env: dict, drop_env=()) -> dict:
    "pytest over `node_ids` with a junit file; counts, cases and exit status."
    xml = s.work / f"{s.name}.xml"
    env = {k: v for k, v in {**os.environ, **extra_env}.items() if k not in drop_env}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={xml}", *node_ids]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, timeout=max(s.left() - 3, 1), stdin=subprocess.DEVNULL)
    out = {"command": " ".join(cmd[1:]), "exit_status": r.returncode, "seconds": round(time.perf_counter() - t0, 2)}
    if xml.exists(): out.update(parse_junit(xml))
    return out


def child_cuda_tests(s: Step) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if "pytest.mark.cuda" in p.read_text())
    s.result["files"] = files
    if not files: return s.fail("no test file carries @pytest.mark.cuda")
    r = run_pytest(s, ["-m", "cuda", *files], {})
    s.result.update(r)
    c = r.get("counts")
    if c is None: return s.fail(f"pytest wrote no results (exit status {r['exit_status']})")
    if c["failures"] or c["errors"] or r["exit_status"] not in (0, 5):
        return s.fail(f"{c['failures']} failed, {c['errors']} errors of {c['tests']} cuda tests: "
                      + "; ".join(f"{x['test']}: {x['message']}" for x in r["cases"] if x["outcome"] in ("failed", "error"))[:1500])
    if c["tests"] == 0: return s.fail("pytest -m cuda collected no test")
    if s.mode == "gpu" and c["skipped"]:
        s.fail(f"{c['skipped']} of {c['tests']} cuda tests were skipped on a GPU machine: "
               + "; ".join(f"{x['test']}: {x['message']}" for x in r["cases"] if x["outcome"] == "skipped"))


def cell_flags(nb: Path) -> dict:
    "How many code cells of a notebook carry each test flag."
    cells = json.loads(nb.read_text())["cells"]
    n = {"cuda": 0, "slow": 0, "notest": 0}
    for c in cells:
        if c["cell_type"] != "code": continue
        for line in "".join(c["source"]).splitlines():
            m = re.fullmatch(r"#\|\s*(\w+)\s*", line)
            if m and m.group(1) in n: n[m.group(1)] += 1
    return n


def child_cuda_notebooks(s: Step) -> None:
    nbs = [ROOT / "nbs" / f"{n}.ipynb" for n in s.plan["notebooks"]]
    s.result["notebooks"] = {nb.stem: cell_flags(nb) for nb in nbs}
    env = {"MOL_EDU_NB_TIMEOUT": str(int(max(s.left() - 5, 1)))}
    drop = ()
    if s.mode == "gpu": env["MOL_EDU_SLOW"] = "1"   # tests/test_notebooks.py then forces the cuda (and slow) cells
    else: drop = ("MOL_EDU_SLOW",)
    force = []
    if s.mode == "gpu":   # the flags test_notebooks.py will use, from its own function under the same environment
        saved = dict(os.environ)
        os.environ.update(env)
        sys.path.insert(0, str(ROOT / "tests"))
        import test_notebooks
        skip, force = test_notebooks._flags()
        os.environ.clear(); os.environ.update(saved)
        s.result["flags"] = {"skip": skip, "force": force}
    else: s.result["flags"] = "not read in dry mode: without a GPU tests/test_notebooks.py skips the cuda cells"
    s.save()
    ids = [f"tests/test_notebooks.py::test_notebook_runs[{nb.name}]" for nb in nbs]
    r = run_pytest(s, ids, env, drop)
    s.result.update(r)
    c = r.get("counts")
    if c is None: return s.fail(f"pytest wrote no results (exit status {r['exit_status']})")
    if c["passed"] != len(nbs) or r["exit_status"] != 0:
        return s.fail("; ".join(f"{x['test'].split('[')[-1].rstrip(']')}: {x['outcome']}: {x['message']}"
                                for x in r["cases"] if x["outcome"] != "passed")[:3000] or f"exit status {r['exit_status']}")
    if s.mode == "gpu" and "cuda" not in force: s.fail("the cuda cells were not forced (test_notebooks._flags)")


# ---------------------------------------------------------------- model speed
def device_for(mode: str):
    "The step's device (cuda, or the CPU in dry mode), with the plan's torch CPU threads set."
    import torch
    if PLAN[mode]["threads"]: torch.set_num_threads(PLAN[mode]["threads"])
    return torch.device("cuda" if mode == "gpu" else "cpu")


def sync(dev) -> None:
    import torch
    if dev.type == "cuda": torch.cuda.synchronize(dev)


def set_float32_mode(precision: str) -> dict:
    "TF32 on for 'tf32' and 'bf16' (the float32 ops left outside autocast), off for 'fp32'; cudnn autotuning on."
    import torch
    tf32 = precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    return {"allow_tf32": tf32, "cudnn_benchmark": True}


def channels_last_4d(model):
    "Store every 4-d parameter channels-last (in place). TrainConfig.channels_last converts the whole model, which "
    "fails on MOL: the expression head's Conv3d weights are 5-d ('required rank 4 tensor to use channels_last format')."
    import torch
    for p in model.parameters():
        if p.dim() == 4: p.data = p.data.contiguous(memory_format=torch.channels_last)
    return model


def mib(dev, kind="allocated"):
    import torch
    if dev.type != "cuda": return None
    f = torch.cuda.max_memory_allocated if kind == "allocated" else torch.cuda.max_memory_reserved
    return round(f(dev) / 2 ** 20, 1)


def reset_memory(dev) -> None:
    import torch
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)


def timed(fn, dev, warmup: int, repeats: int) -> dict:
    "First call (compile, cudnn autotuning), then the median of `repeats` calls after `warmup` more."
    t0 = time.perf_counter(); last = fn(); sync(dev); first = time.perf_counter() - t0
    for _ in range(warmup): last = fn()
    sync(dev)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter(); last = fn(); sync(dev); runs.append(time.perf_counter() - t0)
    runs_sorted = sorted(runs)
    med = runs_sorted[len(runs) // 2] if len(runs) % 2 else sum(runs_sorted[len(runs) // 2 - 1:len(runs) // 2 + 1]) / 2
    return {"first_call_s": round(first, 4), "median_s": med, "runs_s": [round(r, 5) for r in runs], "last": last}


def bf16_matmul_peak(dev, n: int) -> dict:
    "TFLOP/s of an n x n x n bf16 matmul on random data: mean of ten after three warm-ups."
    import torch
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3): a @ b
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(10): a @ b
    sync(dev)
    dt = (time.perf_counter() - t0) / 10
    return {"n": n, "seconds": dt, "tflops": 2 * n ** 3 / dt / 1e12}


def synthetic_batch(cfg, batch: int, dev):
    "`batch` rendered synthetic clips at the model's size, collated (clip, flow, landmarks, label) on `dev`."
    import torch
    from torch.utils.data import default_collate
    from mol_edu.synthetic import SyntheticMicroExpressions
    subjects = 2
    while True:
        syn = SyntheticMicroExpressions(subjects=subjects, videos_per_class=1, seed=0, size=cfg.image_size)
        if len(syn) >= batch: break
        subjects += 1
    idx = [round(i * (len(syn) - 1) / max(batch - 1, 1)) for i in range(batch)]
    samples = [syn[i] for i in idx]
    keys = ("clip", "flow", "landmarks", "label")
    b = default_collate([{k: x[k] for k in keys} for x in samples])
    return {k: v.to(dev) for k, v in b.items()}, samples


def variant_grid(plan: dict) -> list:
    "Eager first (all six), then the compiled ones from the most promising down, as many as the plan allows."
    eager = [dict(precision=p, channels_last=cl, compile=False) for p in PRECISIONS for cl in (False, True)]
    order = [("bf16", True), ("bf16", False), ("tf32", True), ("tf32", False), ("fp32", True), ("fp32", False)]
    comp = [dict(precision=p, channels_last=cl, compile=True) for p, cl in order]
    return eager + comp


def variant_name(v: dict) -> str:
    return v["precision"] + ("+channels_last" if v["channels_last"] else "") + ("+compile" if v["compile"] else "")


def make_trainer(model, samples, v: dict, dev, backend: str, **cfg_over):
    "A Trainer for variant `v`: the library's compile path (inductor), or the same with another backend (dry mode)."
    import torch
    from mol_edu.train import Trainer, TrainConfig
    if v["channels_last"]: channels_last_4d(model)
    cfg = TrainConfig.preset("released", precision="bf16" if v["precision"] == "bf16" else "fp32", compile=v["compile"],
                             **cfg_over)
    t = Trainer(model, samples, cfg, device=dev)
    if v["compile"] and backend != "inductor": t.forward = torch.compile(t.model, backend=backend)
    return t


def count_flops(trainer, batch: dict) -> dict:
    "FLOPs of one forward (eval) and one training step (forward + backward) at this batch (FlopCounterMode)."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from mol_edu.train import normalise_clip
    trainer.model.eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad(): trainer.model(normalise_clip(batch["clip"]))
    fwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc: trainer.step(batch)
    return {"forward": fwd, "train_step": fc.get_total_flops()}


def run_variant(s: Step, v: dict, cfg, batch: dict, samples, dev, flops: dict, peak: float) -> dict:
    import gc
    import torch
    from mol_edu.model import MOL
    from mol_edu.train import autocast_for, normalise_clip
    plan, B = s.plan, batch["clip"].shape[0]
    row = {"name": variant_name(v), **v, "compile_backend": plan["compile_backend"] if v["compile"] else None,
           **set_float32_mode(v["precision"])}
    t = None
    try:
        torch.manual_seed(0)
        t = make_trainer(MOL(cfg), samples, v, dev, plan["compile_backend"])
        x = normalise_clip(batch["clip"])
        def forward():
            t.model.eval()
            with torch.no_grad(), autocast_for(dev, t.cfg.precision): return t.forward(x)
        for part, fn, fl in (("forward", forward, flops["forward"]), ("train_step", lambda: t.step(batch), flops["train_step"])):
            reset_memory(dev)
            r = timed(fn, dev, plan["warmup"], plan["repeats"])
            last = r.pop("last")
            rate = fl / r["median_s"]
            r.update(clips_per_s=B / r["median_s"], peak_memory_mib=mib(dev), peak_reserved_mib=mib(dev, "reserved"),
                     achieved_tflops=rate / 1e12, ratio_to_bf16_peak=rate / (peak * 1e12))
            if part == "train_step":
                loss = float(last["loss"])
                r["loss"] = loss
                if not math.isfinite(loss): raise FloatingPointError(f"training step loss is {loss}")
            row[part] = r
        row["status"] = "ok"
    except Exception as e:
        traceback.print_exc()
        row.update(status="failed", error=short(f"{type(e).__name__}: {e}", 800))
    finally:
        del t
        if dev.type == "cuda": gc.collect(); torch.cuda.empty_cache()   # the next variant's peak memory is its own
        if v["compile"]: torch._dynamo.reset()
    return row


def child_model_speed(s: Step) -> None:
    import torch
    from mol_edu.model import MOL, MOLConfig
    plan, dev = s.plan, device_for(s.mode)
    cfg = MOLConfig.preset(plan["model_preset"], **plan["model_overrides"])
    B = plan["batch"]
    s.result.update(device=str(dev), model={"preset": plan["model_preset"], "overrides": plan["model_overrides"],
                                            "image_size": cfg.image_size, "frames": cfg.frames}, batch=B,
                    timing=f"first call, then the median of {plan['repeats']} calls after {plan['warmup']} warm-up "
                           "calls; forward = eval mode, no grad; train_step = Trainer.step (joint loss, AdamW)")
    s.result["matmul_bf16"] = bf16_matmul_peak(dev, plan["matmul_n"])
    peak = s.result["matmul_bf16"]["tflops"]
    batch, samples = synthetic_batch(cfg, B, dev)
    set_float32_mode("fp32")
    torch.manual_seed(0)
    t = make_trainer(MOL(cfg), samples, dict(precision="fp32", channels_last=False, compile=False), dev, "eager")
    s.result["params"] = sum(p.numel() for p in t.model.parameters())
    fl = count_flops(t, batch)
    s.result["flops"] = {**fl, "forward_gflop_per_clip": fl["forward"] / B / 1e9,
                         "train_step_gflop_per_clip": fl["train_step"] / B / 1e9,
                         "counted": "torch.utils.flop_counter.FlopCounterMode, fp32 eager, this batch"}
    del t
    s.result["variants"] = []
    s.save()
    compiled_done, need_s = 0, {False: 0.0, True: plan["compile_estimate_s"]}   # seconds a variant is expected to take
    for v in variant_grid(plan):
        name = variant_name(v)
        if v["compile"] and compiled_done >= plan["compile_variants"]:
            s.result["variants"].append({"name": name, **v, "status": "skipped",
                                         "reason": f"this mode compiles {plan['compile_variants']} variant(s)"})
            continue
        need = need_s[v["compile"]] * 1.2 + 5
        if s.left() < need:
            s.result["variants"].append({"name": name, **v, "status": "skipped",
                                         "reason": f"step budget: {s.left():.0f} s left, about {need:.0f} s needed"})
            continue
        t0 = time.perf_counter()
        row = run_variant(s, v, cfg, batch, samples, dev, fl, peak)
        row["seconds"] = round(time.perf_counter() - t0, 2)
        if v["compile"]: need_s[True] = row["seconds"] if not compiled_done else max(need_s[True], row["seconds"])
        else: need_s[False] = max(need_s[False], row["seconds"])
        compiled_done += v["compile"]
        s.result["variants"].append(row)
        print(f"model_speed: {name}: {row['status']}"
              + (f", forward {row['forward']['clips_per_s']:.1f} clips/s, step {row['train_step']['clips_per_s']:.1f} clips/s"
                 if row["status"] == "ok" else f": {row.get('error')}"), flush=True)
        s.save()
    s.result["fastest"] = fastest_settings(s.result["variants"], PLAN[s.mode]["fold"]["iterations"])
    failed = [r["name"] for r in s.result["variants"] if r["status"] == "failed"]
    if failed: s.fail(f"variants failed: {', '.join(failed)}: " + "; ".join(
        r["error"] for r in s.result["variants"] if r["status"] == "failed")[:1500])


def fastest_settings(rows: list, iterations: int) -> dict | None:
    "The variant with the shortest estimated fold: first training step (compile, autotuning) + the rest at the median."
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok: return None
    est = lambda r: r["train_step"]["first_call_s"] + (iterations - 1) * r["train_step"]["median_s"]
    best = min(ok, key=est)
    return {"name": best["name"], "precision": best["precision"], "channels_last": best["channels_last"],
            "compile": best["compile"], "estimated_fold_train_s": est(best), "iterations": iterations,
            "rule": "least (first training step + (iterations - 1) x median training step) among the measured variants"}


# ---------------------------------------------------------------- one LOSO fold
def device_busy_us(prof) -> float:
    "Microseconds in which the GPU ran at least one kernel or copy: the union of the device events' intervals."
    import torch
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA)
    busy, end = 0.0, -math.inf
    for a, b in spans:
        if a > end: busy += b - a; end = b
        elif b > end: busy += b - end; end = b
    return busy


def probed_trainer_class(backend: str, profile_at: int, profile_steps: int):
    "A Trainer that times the wait for each batch and each step, and profiles a few steps (torch.profiler)."
    import torch
    from mol_edu.train import Callback, Trainer

    class StepProbe(Callback):
        order = 10   # after History, whose float() of the loss terms waits for the GPU every step
        def __init__(self): self.waits, self.steps, self.profile = [], [], None
        def before_fit(self, t): self.t_fit = self.last = time.perf_counter()
        def before_step(self, t):
            now = time.perf_counter()
            self.waits.append(now - self.last)
            if t.iteration == self.start:
                acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                                if t.device.type == "cuda" else [])
                try:
                    self.prof = torch.profiler.profile(activities=acts)
                    self.prof.start()
                except Exception as e:   # the profile is a measurement of the fold, not a reason to lose it
                    self.prof, self.profile = None, {"error": f"torch.profiler did not start: {type(e).__name__}: {e}"}
                now = self.t_prof = time.perf_counter()
            self.t_step = now
        def after_step(self, t):
            now = time.perf_counter()
            self.steps.append(now - self.t_step)
            self.last = now
            if getattr(self, "prof", None) is not None and t.iteration == self.start + profile_steps:
                sync(t.device); wall = time.perf_counter() - self.t_prof
                self.profile = {"first_iteration": self.start, "steps": profile_steps, "wall_s": wall,
                                "gpu_busy_s": None, "gpu_busy_share": None}
                try:
                    self.prof.stop()
                    busy = device_busy_us(self.prof) if t.device.type == "cuda" else None
                    if busy is None: self.profile["note"] = "no GPU: the busy share is measured on CUDA only"
                    elif busy == 0: self.profile["note"] = "the profiler recorded no kernel or copy on the GPU"
                    else: self.profile.update(gpu_busy_s=busy / 1e6, gpu_busy_share=busy / 1e6 / wall)
                except Exception as e: self.profile["error"] = f"torch.profiler: {type(e).__name__}: {e}"
                self.prof = None
                self.last = time.perf_counter()   # the profiler's own wrap-up is not a data-loader wait
        def after_fit(self, t): self.fit_s = time.perf_counter() - self.t_fit

    class ProbedTrainer(Trainer):
        def __init__(self, *args, callbacks=(), **kw):
            self.probe = StepProbe()
            super().__init__(*args, callbacks=(*callbacks, self.probe), **kw)
            self.probe.start = max(0, min(profile_at, self.cfg.iterations - profile_steps))
            if self.cfg.compile and backend != "inductor": self.forward = torch.compile(self.model, backend=backend)
            ProbedTrainer.last = self

    return ProbedTrainer


def chance_test(scores: dict, classes: int) -> dict:
    "Does the accuracy leave chance (1/K)? One-sided exact binomial test on the pooled predictions."
    n, acc = scores["n"], scores["acc"]
    k, q = round(acc * n), 1 / classes
    # P(X >= k) for X ~ Binomial(n, 1/K): the chance of k or more correct by guessing
    p = min(1.0, sum(math.comb(n, i) * q ** i * (1 - q) ** (n - i) for i in range(k, n + 1))) if n else None
    predicted = [sum(col) for col in zip(*scores["confusion"])]
    return {"chance_acc": 1 / classes, "correct": k, "n": n, "p_value_above_chance": p,
            "above_chance": bool(p is not None and p < 0.05), "classes_predicted": sum(1 for c in predicted if c)}


def child_loso_fold(s: Step) -> None:
    import numpy as np
    import torch
    from mol_edu.cli import DEMO, build_model, input_size, load_dataset, model_spec
    from mol_edu.loso import LOSOConfig, run_loso, summarise
    from mol_edu.train import TrainConfig
    plan, fp, dev = s.plan, s.plan["fold"], device_for(s.mode)
    speed = s.work / "model_speed.json"
    fast = json.loads(speed.read_text()).get("fastest") if speed.exists() else None
    source = "model_speed step" if fast else "fallback (model_speed gave no result): bf16, channels-last, eager"
    fast = fast or {"precision": "bf16", "channels_last": True, "compile": False}
    settings = {k: fast[k] for k in ("precision", "channels_last", "compile")}
    s.result["settings"] = {**settings, "source": source, **set_float32_mode(settings["precision"]),
                            "num_workers": fp["workers"], "compile_backend": plan["compile_backend"] if settings["compile"] else None}
    over = dict(DEMO["model_overrides"]) if fp["arch"] == "small" else {}
    over.pop("mer_norm", None)
    size = input_size(model_spec(fp["arch"], 5, **over))
    t0 = time.perf_counter()
    ds, info = load_dataset("synthetic", size, fp["subjects"], fp["videos_per_class"], seed=0, workers=fp["render_workers"])
    s.result["corpus"] = {**info, "clips": len(ds), "subjects": len(ds.subjects), "size": size,
                          "render_s": round(time.perf_counter() - t0, 2)}
    s.result["runs"] = {}
    s.save()
    K = len(ds.classes)
    trainer_cls = probed_trainer_class(plan["compile_backend"], fp["profile_at"], fp["profile_steps"])
    for head in ("temporal", "none"):
        spec = {**model_spec(fp["arch"], K, **over, mer_norm=head), "classes": list(ds.classes)}
        cfg = TrainConfig.preset("released", iterations=fp["iterations"], batch_size=fp["batch"],
                                 precision="bf16" if settings["precision"] == "bf16" else "fp32",
                                 compile=settings["compile"], num_workers=fp["workers"])
        make = (lambda: channels_last_4d(build_model(spec))) if settings["channels_last"] else (lambda: build_model(spec))
        reset_memory(dev)
        t0 = time.perf_counter()
        res = run_loso(ds, make, cfg, LOSOConfig(folds=1), device=dev, trainer_cls=trainer_cls, model_config=spec)
        sync(dev)
        secs = time.perf_counter() - t0
        summ = summarise(res, secs)
        probe = trainer_cls.last.probe
        waits = probe.waits[1:]
        fold = res.folds[0]
        run = {"mer_norm": head, "ccc_reading": spec["config"]["ccc_reading"], "test_subject": fold["subject"],
               "n_train": fold["n_train"], "n_test": fold["n_test"], "iterations": cfg.iterations,
               "batch_size": cfg.batch_size, "fold_s": secs, "train_s": probe.fit_s,
               "clips_per_s": cfg.iterations * cfg.batch_size / probe.fit_s, "peak_memory_mib": mib(dev),
               "loader": {"first_batch_s": probe.waits[0] if probe.waits else None,
                          "wait_share": float(np.sum(waits) / probe.fit_s) if waits else None,
                          "median_wait_ms": float(np.median(waits) * 1e3) if waits else None,
                          "median_step_ms": float(np.median(probe.steps) * 1e3) if probe.steps else None},
               "profile": probe.profile,
               "final_loss": fold["history"][-1]["loss"] if fold["history"] else None,
               "video": {k: summ["fixed/video"][k] for k in ("acc", "uar", "uf1", "wf1", "n", "confusion")},
               "clip": {k: summ["fixed/clip"][k] for k in ("acc", "uar", "uf1", "wf1", "n")},
               "epe": summ["epe"], "nme_outer_corners": summ["nme_outer_corners"], "nme_eye_centres": summ["nme_eye_centres"]}
        run["video_vs_chance"] = chance_test(summ["fixed/video"], K)
        run["clip_vs_chance"] = chance_test(summ["fixed/clip"], K)
        s.result["runs"][head] = run
        s.save()
        print(f"loso_fold: mer_norm={head}: {secs:.1f} s, {run['clips_per_s']:.1f} clips/s, UF1 per video "
              f"{run['video']['uf1']:.3f} (p above chance {run['video_vs_chance']['p_value_above_chance']})", flush=True)
        del res
        if dev.type == "cuda": torch.cuda.empty_cache()
        if settings["compile"]: torch._dynamo.reset()
    s.result["note"] = ("one test subject: a few dozen videos, so the chance test is weak evidence either way; "
                        "the p-value is a one-sided exact binomial test of accuracy against 1/K")


# ---------------------------------------------------------------- NCCL through torchrun
NCCL_NOT_TAKEN = "the distributed path was not taken"


def child_nccl(s: Step) -> None:
    rec_path, runs = s.work / "ddp_worker.json", s.work / "nccl_runs"
    mt = [*s.plan["nccl"], "--quiet", "--runs", str(runs), "--name", "nccl"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(Path(__file__).resolve()), "--ddp-worker", str(rec_path), "--", *mt]
    expected = "nccl" if s.mode == "gpu" else "gloo"
    s.result.update(command="torchrun " + " ".join(cmd[3:]), mol_train_args=mt, expected_backend=expected)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, timeout=max(s.left() - 3, 1), stdin=subprocess.DEVNULL)
    s.result.update(exit_status=r.returncode, seconds=round(time.perf_counter() - t0, 2))
    w = json.loads(rec_path.read_text()) if rec_path.exists() else None
    s.result["worker"] = w
    if w is None: return s.fail(f"torchrun exited with status {r.returncode} and the worker wrote no record")
    if not w.get("distributed_path_taken"):
        return s.fail(f"{NCCL_NOT_TAKEN}: under torchrun (WORLD_SIZE={w['env'].get('WORLD_SIZE')}) "
                      f"mol_edu.distributed.distributed_env() returned {w.get('distributed_env')}, so mol-train never "
                      f"called init_distributed() and trained in one plain process"
                      + (f" (mol-train exit status {w.get('exit_status')})" if w.get("exit_status") else ""))
    if r.returncode != 0 or w.get("exit_status"):
        return s.fail(f"mol-train under torchrun failed (torchrun {r.returncode}, mol-train {w.get('exit_status')}): "
                      f"{w.get('error')}")
    if w.get("backend") != expected or w.get("world") != 1:
        return s.fail(f"process group backend {w.get('backend')} world {w.get('world')}; expected {expected} world 1")
    if not w.get("summary"): s.fail("mol-train wrote no summary.json")


def ddp_worker(record: Path, mol_train_args: list) -> int:
    "Under torchrun: mol-train (mol_edu.cli.train_cli) with these arguments, noting whether it joined a process group."
    import torch.distributed as dist
    import mol_edu.distributed as D
    rank = int(os.environ.get("RANK", "0"))
    rec = {"env": {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")},
           "nccl_available": dist.is_available() and dist.is_nccl_available(), "distributed_env": D.distributed_env(), "distributed_path_taken": False, "exit_status": 0, "error": None}
    original = D.init_distributed
    def init_and_note(*a, **kw):   # the same function, noting what it set up
        out = original(*a, **kw)
        rec.update(distributed_path_taken=True, backend=dist.get_backend(), world=dist.get_world_size(),
                   rank=dist.get_rank(), device=str(out[2]))
        return out
    D.init_distributed = init_and_note
    sys.argv = ["mol-train", *mol_train_args]
    from mol_edu.cli import train_cli
    t0 = time.perf_counter()
    try: train_cli()
    except SystemExit as e: rec["exit_status"] = e.code if isinstance(e.code, int) else 1
    except Exception as e:
        traceback.print_exc()
        rec.update(exit_status=1, error=short(f"{type(e).__name__}: {e}", 800))
    rec["seconds"] = time.perf_counter() - t0
    runs = Path(mol_train_args[mol_train_args.index("--runs") + 1]) / mol_train_args[mol_train_args.index("--name") + 1]
    summary = runs / "summary.json"
    if summary.exists():
        sm = json.loads(summary.read_text())
        rec["summary"] = {"folds": sm.get("folds"), "seconds": sm.get("seconds"), "epe": sm.get("epe"),
                          "video": {k: sm.get("fixed/video", {}).get(k) for k in ("acc", "uf1", "n")}}
    if rank == 0: write_json(record, rec)
    return rec["exit_status"] or 0


CHILD_STEPS = {"install": child_install, "cuda_tests": child_cuda_tests, "cuda_notebooks": child_cuda_notebooks,
               "model_speed": child_model_speed, "loso_fold": child_loso_fold, "nccl": child_nccl}

if __name__ == "__main__":
    sys.exit(main())
