"""Checkpoints: one complete set or none. Fault injection kills training at every write point of a checkpoint
(before, between and after its files) and checks that resuming gives exactly the uninterrupted run; mixed, damaged
or foreign sets are refused with one line."""
import json
import shutil
import subprocess
import sys

import pytest
import torch

from mol_edu.checkpoint import checkpoint_file, load_weights, read_checkpoint_meta
from mol_edu.core import seed_everything
from mol_edu.train import TinyJointNet, ToyMotionClips, TrainConfig, Trainer

# The worker SIGKILLs itself at the n-th os.replace (every file mol_edu writes ends in one), before or after it.
KILLER = """
import os, signal, sys
n, when = int(sys.argv[1]), sys.argv[2]
calls, original = [0], os.replace
def replace(src, dst, *a, **k):
    calls[0] += 1
    if calls[0] == n and when == "before": os.kill(os.getpid(), signal.SIGKILL)
    out = original(src, dst, *a, **k)
    if calls[0] == n and when == "after": os.kill(os.getpid(), signal.SIGKILL)
    return out
os.replace = replace
sys.argv = [sys.argv[0], *sys.argv[3:]]
"""

TRAIN = KILLER + """
import json, torch
from pathlib import Path
from mol_edu.checkpoint import PeriodicCheckpoint
from mol_edu.core import seed_everything
from mol_edu.train import TinyJointNet, ToyMotionClips, TrainConfig, Trainer
torch.set_num_threads(1)
ckpt, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = TrainConfig(lr=3e-3, batch_size=6, iterations=8, seed=7)
seed_everything(7)
t = Trainer(TinyJointNet(dropout=0.3), ToyMotionClips(n=24, seed=0), cfg, device="cpu",
            callbacks=[PeriodicCheckpoint(ckpt, every=2)])
if (ckpt / "checkpoint.json").exists(): t.load_checkpoint(ckpt)
t.fit()
w = torch.cat([p.detach().flatten() for p in t.model.parameters()])
out.write_text(json.dumps({"losses": [h["loss"] for h in t.history], "weights": w.tolist()}))
"""


def _run(script, *args):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill")
    (d / "train.py").write_text(TRAIN)
    r = _run(d / "train.py", 0, "never", d / "ref-ckpt", d / "ref.json")
    assert r.returncode == 0, r.stderr[-2000:]
    return d, json.loads((d / "ref.json").read_text())


# each checkpoint is 3 writes (weights, state, manifest): 1-3 are the first checkpoint (before it, between its files,
# after it), 6 the manifest of the second (before it; after it, when the first checkpoint's files are not yet removed)
@pytest.mark.parametrize("n,when", [(1, "before"), (2, "before"), (3, "before"), (3, "after"), (6, "before"),
                                    (6, "after")])
def test_killed_training_resumes_to_exactly_the_uninterrupted_run(worker, n, when):
    d, ref = worker
    ckpt, out = d / f"ckpt-{n}-{when}", d / f"out-{n}-{when}.json"
    killed = _run(d / "train.py", n, when, ckpt, out)
    assert killed.returncode == -9 and not out.exists()                   # it really died there
    resumed = _run(d / "train.py", 0, "never", ckpt, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = json.loads(out.read_text())
    assert got["losses"] == ref["losses"] and got["weights"] == ref["weights"]


def _trained(tmp_path, iterations=2, name="a"):
    seed_everything(0)
    t = Trainer(TinyJointNet(), ToyMotionClips(n=8), TrainConfig(batch_size=4, iterations=iterations), device="cpu").fit()
    return t.save_checkpoint(tmp_path / name)


def test_a_mixed_set_is_refused(tmp_path):
    a, b = _trained(tmp_path, 2, "a"), _trained(tmp_path, 4, "b")
    shutil.copy(checkpoint_file(b, "state"), checkpoint_file(a, "state"))   # newer state beside older weights
    with pytest.raises(ValueError, match="refusing a mixed set"):
        Trainer(TinyJointNet(), ToyMotionClips(n=8), TrainConfig(), device="cpu").load_checkpoint(a)


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "checkpoint.json").unlink(), "no checkpoint.json"),
    (lambda d: (d / "checkpoint.json").write_text("{ broken"), "checkpoint.json: not valid JSON"),
    (lambda d: (d / "checkpoint.json").write_text("[1, 2]"), "expected a JSON object"),
    (lambda d: checkpoint_file(d).write_bytes(b""), "does not match checkpoint.json"),
    (lambda d: checkpoint_file(d).unlink(), "model-0000002.safetensors is missing"),
])
def test_damaged_checkpoints_are_one_line_errors(tmp_path, damage, message):
    d = _trained(tmp_path)
    damage(d)
    with pytest.raises(ValueError, match=message):
        load_weights(TinyJointNet(), d)


def test_weights_of_another_model_are_described(tmp_path):
    d = _trained(tmp_path)
    with pytest.raises(ValueError, match=r"weights do not fit this model: .*of another shape \(e\.g\. classify"):
        load_weights(TinyJointNet(classes=3), d)
    f = tmp_path / "fake.safetensors"; f.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="fake.safetensors: not a readable safetensors file"):
        load_weights(TinyJointNet(), f)


def test_an_older_checkpoint_gives_weights_but_no_resume(tmp_path):
    d = _trained(tmp_path)
    old = tmp_path / "old"; old.mkdir()
    shutil.copy(checkpoint_file(d), old / "model.safetensors")
    meta = read_checkpoint_meta(d); meta.pop("format"); meta.pop("files")
    (old / "checkpoint.json").write_text(json.dumps(meta))
    (old / "state.pt").write_bytes(b"pickled state of an older mol_edu")
    load_weights(TinyJointNet(), old)                                   # the safetensors weights load
    with pytest.raises(ValueError, match="cannot resume from it"):
        Trainer(TinyJointNet(), ToyMotionClips(n=8), TrainConfig(), device="cpu").load_checkpoint(old)
