"""tools/gpu_check.py: its dry mode (the CPU rehearsal of the GPU check) end to end, and the states it refuses.

The dry run installs a small wheel made here through the script's own `pip install --no-index --no-deps --target`
(CI has no .whl/), runs every step on the CPU and must report each one with sane values.
"""
import configparser
import importlib.util
import json
import math
import os
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.py"
STEPS = ["install", "cuda_tests", "cuda_notebooks", "model_speed", "loso_fold", "nccl"]


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gc = load_script()


def run(*args, env=None, timeout=600):
    e = dict(os.environ, **(env or {}))
    e.pop("MOL_EDU_DEVICE", None)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


def make_wheel(folder: Path, name="molgpuprobe", ver="0.1") -> Path:
    "A minimal pure-Python wheel, so that the install step's pip command really runs."
    folder.mkdir(parents=True, exist_ok=True)
    whl = folder / f"{name}-{ver}-py3-none-any.whl"
    di = f"{name}-{ver}.dist-info"
    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n",
             f"{di}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{di}/RECORD"] = "".join(f"{k},,\n" for k in files) + f"{di}/RECORD,,\n"
    with zipfile.ZipFile(whl, "w") as z:
        for k, v in files.items(): z.writestr(k, v)
    return whl


# ---------------------------------------------------------------- the dry run, once for the module
@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    make_wheel(tmp / "wheels")
    (tmp / "wheels.txt").write_text("# test list\nmolgpuprobe==0.1\n")
    r = run("--dry", "--out", tmp / "out", "--wheels", tmp / "wheels", "--wheel-list", tmp / "wheels.txt",
            "--site", tmp / "site", timeout=900)
    path = tmp / "out" / "gpu_check.json"
    assert path.exists(), f"no report; exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return SimpleNamespace(r=r, report=json.loads(path.read_text()), tmp=tmp, out=tmp / "out")


def test_dry_run_records_every_step_and_the_exit_status_follows(dry):
    rep, r = dry.report, dry.r
    assert rep["mode"] == "dry" and rep["preflight"]["status"] == "ok"
    assert list(rep["steps"]) == STEPS
    for name, st in rep["steps"].items():
        assert st["status"] in ("ok", "failed", "timeout", "skipped"), name
        assert 0 <= st["seconds"] <= st["timeout_s"] + 30, (name, st["seconds"], st["timeout_s"])
        assert st["budget_s"] > 0 and isinstance(st["result"], dict)
        assert (st["error"] is None) == (st["status"] == "ok"), (name, st["error"])
    failed = [n for n, st in rep["steps"].items() if st["status"] != "ok"]
    # the one failure allowed: torchrun with one process not taking mol-train's distributed path (library today)
    assert failed in ([], ["nccl"]), {n: rep["steps"][n]["error"] for n in failed}
    if failed: assert gc.NCCL_NOT_TAKEN in rep["steps"]["nccl"]["error"]
    assert r.returncode == (1 if failed else 0), r.stderr[-2000:]
    assert rep["failed"] == failed and rep["ok"] == (not failed)
    assert rep["seconds"] < rep["budget_s"]
    log = (dry.out / "gpu_check.log").read_text()
    assert all(f"] {s}: " in log for s in STEPS)
    assert rep["machine"]["torch"] == torch.__version__


def test_dry_install_used_pip_target_without_touching_torch(dry):
    res = dry.report["steps"]["install"]["result"]
    assert res["wheels"] == ["molgpuprobe-0.1-py3-none-any.whl"]
    for flag in ("--no-index", "--no-deps", "--target"): assert flag in res["pip_command"]
    assert (dry.tmp / "site" / "molgpuprobe" / "__init__.py").exists()
    imp = res["imports"]
    assert Path(imp["mol_edu"]["file"]).is_relative_to(ROOT)
    assert imp["torch"]["file"] == torch.__file__ and imp["torch"]["version"] == torch.__version__
    assert res["pythonpath"].split(os.pathsep)[:2] == [str(dry.tmp / "site"), str(ROOT)]


def test_dry_cuda_tests_and_notebooks(dry):
    ct = dry.report["steps"]["cuda_tests"]["result"]
    assert "tests/test_correlation_heads.py" in ct["files"]
    assert ct["counts"]["tests"] >= 1 and ct["counts"]["failures"] == ct["counts"]["errors"] == 0
    if not torch.cuda.is_available():   # the CPU machine: conftest.py skips them
        assert all(c["outcome"] == "skipped" and "CUDA" in c["message"] for c in ct["cases"])
    nb = dry.report["steps"]["cuda_notebooks"]["result"]
    assert nb["notebooks"]["23_gpu_training"]["cuda"] >= 3
    assert nb["counts"]["passed"] == len(nb["notebooks"]) and "test_notebooks.py" in nb["command"]


def test_dry_model_speed_grid(dry):
    ms = dry.report["steps"]["model_speed"]["result"]
    rows = {v["name"]: v for v in ms["variants"]}
    assert len(rows) == 12
    eager = [v for v in rows.values() if not v["compile"]]
    assert len(eager) == 6 and all(v["status"] == "ok" for v in eager)
    compiled = [v for v in rows.values() if v["compile"]]
    assert [v["status"] for v in compiled].count("ok") == 1
    assert all("compiles 1 variant" in v["reason"] for v in compiled if v["status"] == "skipped")
    assert ms["matmul_bf16"]["tflops"] > 0
    f = ms["flops"]
    assert f["forward"] > 0 and 2 < f["train_step"] / f["forward"] < 4.5   # backward ~ twice the forward
    for v in rows.values():
        if v["status"] != "ok": continue
        for part in ("forward", "train_step"):
            m = v[part]
            assert m["median_s"] > 0 and m["clips_per_s"] == pytest.approx(ms["batch"] / m["median_s"])
            assert 0 < m["ratio_to_bf16_peak"] and m["peak_memory_mib"] is None   # CPU: no CUDA allocator
        assert math.isfinite(v["train_step"]["loss"])
        assert v["allow_tf32"] == (v["precision"] != "fp32")
    fastest = ms["fastest"]
    assert fastest["name"] in rows and rows[fastest["name"]]["status"] == "ok"


def test_dry_loso_fold_both_heads(dry):
    lf = dry.report["steps"]["loso_fold"]["result"]
    assert lf["settings"]["source"] == "model_speed step"
    assert lf["corpus"]["clips"] > 0 and set(lf["runs"]) == {"temporal", "none"}
    for head, run in lf["runs"].items():
        assert run["mer_norm"] == head and run["iterations"] == gc.PLAN["dry"]["fold"]["iterations"]
        assert run["clips_per_s"] > 0 and run["fold_s"] >= run["train_s"] > 0
        assert 0 <= run["loader"]["wait_share"] <= 1
        assert run["profile"]["steps"] == 2 and run["profile"]["gpu_busy_share"] is None
        assert 0 <= run["video"]["acc"] <= 1 and run["video"]["n"] > 0
        ch = run["video_vs_chance"]
        assert ch["chance_acc"] == pytest.approx(1 / 5) and 0 <= ch["p_value_above_chance"] <= 1


def test_dry_nccl_step_ran_mol_train_under_torchrun(dry):
    st = dry.report["steps"]["nccl"]
    w = st["result"]["worker"]
    assert st["result"]["command"].startswith("torchrun --standalone --nproc_per_node=1")
    assert w["env"]["WORLD_SIZE"] == "1" and w["env"]["RANK"] == "0"
    assert w["summary"] and w["summary"]["folds"]   # mol-train ran to its report either way
    if w["distributed_path_taken"]: assert st["status"] == "ok" and w["backend"] == "gloo" and w["world"] == 1
    else: assert st["status"] == "failed" and w["distributed_env"] is None


# ---------------------------------------------------------------- bad states: one line, non-zero exit
def test_no_cuda_device_without_dry(tmp_path):
    if torch.cuda.is_available(): pytest.skip("this machine has a GPU")
    r = run("--out", tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: error: no CUDA device:")
    assert json.loads((tmp_path / "gpu_check.json").read_text())["preflight"]["status"] == "failed"


def test_too_old_cuda_torch_is_refused(tmp_path):
    stub = tmp_path / "stub" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('__version__ = "2.0.1+cu118"\n'
                                      'class version: cuda = "11.8"\n'
                                      'class cuda:\n    is_available = staticmethod(lambda: True)\n')
    r = run("--out", tmp_path / "out", env={"PYTHONPATH": str(tmp_path / "stub")})
    cp = configparser.ConfigParser(); cp.read(ROOT / "settings.ini")
    req = next(x for x in cp["DEFAULT"]["requirements"].split() if x.startswith("torch>"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"gpu_check: error: torch 2.0.1+cu118 is older than this project supports (settings.ini requires {req})"


def test_missing_wheels_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("--dry", "--out", tmp_path / "out", "--wheels", tmp_path / "empty")
    assert r.returncode == 2
    msg = r.stderr.strip()
    assert msg.startswith("gpu_check: error: missing wheels in") and "\n" not in msg
    for name, ver in gc.read_wheel_list(): assert f"{name}=={ver}" in msg


def test_a_failed_step_is_recorded_and_the_rest_goes_on(tmp_path):
    # a 4 s budget: cuda_tests must leave model_speed's 60 s, so it is skipped; model_speed is made to hang (however
    # fast the machine), so it runs out of time
    r = run("--dry", "--out", tmp_path, "--steps", "cuda_tests,model_speed", "--budget", "4", timeout=120,
            env={gc.STALL_ENV: "model_speed"})
    rep = json.loads((tmp_path / "gpu_check.json").read_text())
    assert r.returncode == 1 and list(rep["steps"]) == ["cuda_tests", "model_speed"]
    assert rep["steps"]["cuda_tests"]["status"] == "skipped" and "no time left" in rep["steps"]["cuda_tests"]["error"]
    assert rep["steps"]["model_speed"]["status"] == "timeout" and rep["steps"]["model_speed"]["seconds"] < 30
    assert rep["failed"] == ["cuda_tests", "model_speed"]


# ---------------------------------------------------------------- the pure parts
def test_torch_problem():
    req = "torch>=2.1,<3"
    assert gc.torch_problem("2.11.0+cu130", "13.0", True, req, dry=False) is None
    assert gc.torch_problem("2.12.0.dev20260101+cu130", "13.0", True, req, dry=False) is None
    assert "older than" in gc.torch_problem("2.0.1+cu118", "11.8", True, req, dry=False)
    assert "outside the range" in gc.torch_problem("3.0.0", "13.0", True, req, dry=False)
    assert "CPU-only build" in gc.torch_problem("2.13.0+cpu", None, False, req, dry=False)
    assert "sees no GPU" in gc.torch_problem("2.11.0+cu130", "13.0", False, req, dry=False)
    assert gc.torch_problem("2.13.0+cpu", None, False, req, dry=True) is None
    assert gc.torch_requirement().startswith("torch>=")


def test_wheel_list_matches_this_environment_and_settings():
    pins = gc.read_wheel_list()
    names = [gc.canonical(n) for n, _ in pins]
    assert len(set(names)) == len(names) and {"fastcore", "nbdev", "execnb", "ipython"} <= set(names)
    for name, ver in pins: assert version(name) == ver, name   # the versions of this project's .venv
    cp = configparser.ConfigParser(); cp.read(ROOT / "settings.ini")
    dev = dict(x.split("==") for x in cp["DEFAULT"]["dev_requirements"].split() if "==" in x)
    for name, ver in pins:
        if name in dev: assert dev[name] == ver, name
    assert ".whl/" in (ROOT / ".gitignore").read_text().split()


def test_find_wheels_and_bad_lists(tmp_path):
    pins = [("matplotlib-inline", "0.2.2"), ("fastcore", "1.12.47")]
    make_wheel(tmp_path, "matplotlib_inline", "0.2.2")
    with pytest.raises(gc.CheckError, match=r"missing wheels in .*: fastcore==1\.12\.47;"): gc.find_wheels(tmp_path, pins)
    make_wheel(tmp_path, "fastcore", "1.12.47")
    assert [f.name for f in gc.find_wheels(tmp_path, pins)] == ["matplotlib_inline-0.2.2-py3-none-any.whl",
                                                                 "fastcore-1.12.47-py3-none-any.whl"]
    make_wheel(tmp_path, "fastcore", "1.8.0")
    with pytest.raises(gc.CheckError, match=r"two versions of a wheel .*fastcore \(1\.12\.47, 1\.8\.0\)"):
        gc.find_wheels(tmp_path, pins)
    (tmp_path / "list.txt").write_text("fastcore>=1.8\n")
    with pytest.raises(gc.CheckError, match="expected NAME==VERSION"): gc.read_wheel_list(tmp_path / "list.txt")


def test_device_busy_is_the_union_of_kernel_intervals():
    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU
    ev = lambda a, b, d=cuda: SimpleNamespace(time_range=SimpleNamespace(start=a, end=b), device_type=d)
    prof = SimpleNamespace(events=lambda: [ev(0, 10), ev(5, 12), ev(20, 25), ev(0, 100, cpu), ev(21, 22)])
    assert gc.device_busy_us(prof) == 17   # [0, 12] and [20, 25]; the CPU event does not count


def test_chance_test_sees_a_collapsed_classifier():
    collapsed = {"n": 10, "acc": 0.2, "confusion": [[2, 0, 0, 0, 0]] + [[2, 0, 0, 0, 0]] * 4}
    r = gc.chance_test(collapsed, 5)
    assert r["classes_predicted"] == 1 and not r["above_chance"] and r["p_value_above_chance"] > 0.3
    perfect = {"n": 10, "acc": 1.0, "confusion": [[2 if i == j else 0 for j in range(5)] for i in range(5)]}
    assert gc.chance_test(perfect, 5)["above_chance"]
