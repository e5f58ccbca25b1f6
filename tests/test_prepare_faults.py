"""mol-prepare on a machine that kills things: workers die with their parent, one run per cache, a kill at any
write point is repaired by a rerun that gives exactly the uninterrupted cache, and what the cache trusts is hashed."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from mol_edu.alignment import PrepareError, PrepareSettings, write_face_tree
from mol_edu.datasets import read_casme2
from mol_edu.prepare import (PreparedDataset, cache_lock, check_cached_video, prepare_index, prepare_video,
                             video_dir_name)

BIN = Path(sys.executable).parent
SMALL = PrepareSettings(align_size=72, crop_size=64)


def _index(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_casme2(root, **kw)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_face_tree(tmp_path_factory.mktemp("faces") / "casme2", "casme2", subjects=2, videos=1, frames=8)


def _arrays(out):
    "Every array of a cache, by video folder and file, as bytes (manifests hold paths and times, arrays do not)."
    return {f"{d.name}/{f.name}": f.read_bytes() for d in sorted((out / "videos").iterdir()) if not d.name.startswith(".")
            for f in sorted(d.glob("*.npy"))}


KILL_PREPARE = """
import os, signal, sys, warnings
n, when = int(sys.argv[1]), sys.argv[2]
calls, original = [0], os.replace
def replace(src, dst, *a, **k):
    calls[0] += 1
    if calls[0] == n and when == "before": os.kill(os.getpid(), signal.SIGKILL)
    out = original(src, dst, *a, **k)
    if calls[0] == n and when == "after": os.kill(os.getpid(), signal.SIGKILL)
    return out
os.replace = replace
from mol_edu.alignment import PrepareSettings
from mol_edu.datasets import read_casme2
from mol_edu.prepare import prepare_index
warnings.simplefilter("ignore")
prepare_index(read_casme2(sys.argv[3]), sys.argv[4], PrepareSettings(align_size=72, crop_size=64), workers=1,
              progress=False)
"""


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "cache"
    prepare_index(_index(tree), out, SMALL, workers=1, progress=False)
    return _arrays(out)


# the writes of a run: video 1's folder (1), video 2's folder (2), index.json (3)
@pytest.mark.parametrize("n,when", [(1, "before"), (1, "after"), (2, "before"), (3, "before")])
def test_a_killed_prepare_is_repaired_by_a_rerun(tree, reference, tmp_path, n, when):
    script = tmp_path / "kill.py"; script.write_text(KILL_PREPARE)
    out = tmp_path / "cache"
    r = subprocess.run([sys.executable, str(script), str(n), when, str(tree), str(out)], capture_output=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]
    r = subprocess.run([sys.executable, str(script), "0", "never", str(tree), str(out)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _arrays(out) == reference
    assert not [p for p in (out / "videos").iterdir() if p.name.startswith(".")]   # no temporary left behind
    assert len(json.loads((out / "index.json").read_text())["videos"]) == 2


def _children(pid):
    "Process ids whose parent is `pid` (Linux /proc)."
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try: fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError: continue
        if int(fields[1]) == pid: kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the workers")
def test_workers_die_with_their_parent(tmp_path):
    root = write_face_tree(tmp_path / "casme2", "casme2", subjects=3, videos=1, frames=16)
    out = tmp_path / "cache"
    p = subprocess.Popen([str(BIN / "mol-prepare"), "casme2", str(root), "--out", str(out), "--workers", "2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 240 and len(_children(p.pid)) < 3 and p.poll() is None:
        time.sleep(0.1)                                              # until both workers (and the tracker) run
    assert p.poll() is None, "the run ended before its workers started"
    os.kill(p.pid, signal.SIGKILL); p.wait()                         # the parent only, not its process group
    deadline = time.time() + 20
    while time.time() < deadline:
        try: os.killpg(p.pid, 0)                                     # anyone left in the run's process group?
        except ProcessLookupError: break
        time.sleep(0.2)
    else:
        left = subprocess.run(["ps", "-o", "pid,stat,cmd", "-g", str(p.pid)], capture_output=True, text=True).stdout
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"workers (or the resource tracker) outlived their parent by 20 s:\n{left}")


def test_a_second_run_on_the_same_cache_is_told_it_is_busy(tmp_path):
    out = tmp_path / "cache"; out.mkdir()
    with cache_lock(out):
        with pytest.raises(PrepareError, match=rf"{out}: busy: another mol-prepare \(pid {os.getpid()}\)"):
            with cache_lock(out): pass
    with cache_lock(out): pass                                       # free again afterwards


def test_a_truncated_frame_is_refused_not_cached(tree, tmp_path):
    idx = _index(tree)
    rec = idx[0]
    f = Path(rec.frames[3]); data = f.read_bytes()
    bad = tmp_path / "bad"; bad.mkdir()
    for p in rec.frames: (bad / Path(p).name).write_bytes(Path(p).read_bytes())
    (bad / f.name).write_bytes(data[: len(data) // 2])              # a cut-off JPEG decodes with grey rows in OpenCV
    rec.frames = [bad / Path(p).name for p in rec.frames]
    with pytest.raises(PrepareError, match=rf"{bad / f.name}: truncated image"):
        prepare_video(rec, tmp_path / "cache", idx.classes, SMALL)


def test_a_hand_edited_manifest_is_not_trusted(tree, tmp_path):
    idx = _index(tree)
    prepare_index(idx, tmp_path / "cache", SMALL, workers=1, progress=False)
    mf = tmp_path / "cache" / "videos" / video_dir_name(idx[0]) / "manifest.json"
    man = json.loads(mf.read_text()); man["record"]["label"] = (man["record"]["label"] + 1) % 5
    mf.write_text(json.dumps(man))
    assert "edited: hash mismatch" in check_cached_video(mf.parent)[1]
    with pytest.raises(PrepareError, match="edited: hash mismatch"):
        PreparedDataset(tmp_path / "cache")
    s = prepare_index(idx, tmp_path / "cache", SMALL, workers=1, progress=False)   # a rerun rebuilds it
    assert s["done"] == [idx[0].key]


def test_a_changed_protocol_rebuilds_with_the_new_classes(tree, tmp_path):
    prepare_index(_index(tree), tmp_path / "cache", SMALL, workers=1, progress=False)
    three = _index(tree, protocol="3class")
    s = prepare_index(three, tmp_path / "cache", SMALL, workers=1, progress=False)
    assert s["cached"] == [] and len(s["done"]) == len(three)
    assert PreparedDataset(tmp_path / "cache").classes == three.classes


def test_limit_keeps_the_cache_count_honest(tree, tmp_path):
    idx = _index(tree)
    prepare_index(idx, tmp_path / "cache", SMALL, workers=1, progress=False)
    idx.records = idx.records[:1]                                    # what --limit 1 does
    s = prepare_index(idx, tmp_path / "cache", SMALL, workers=1, progress=False)
    assert s["cache_videos"] == 2 == len(json.loads((tmp_path / "cache" / "index.json").read_text())["videos"])
    assert len(PreparedDataset(tmp_path / "cache").videos) == 2


def test_the_flow_method_keys_the_cache(tree, tmp_path):
    idx = _index(tree)
    prepare_index(idx, tmp_path / "cache", SMALL, workers=1, progress=False)
    torch_settings = PrepareSettings(align_size=72, crop_size=64, flow_method="torch")
    s = prepare_index(idx, tmp_path / "cache", torch_settings, workers=1, progress=False)
    assert s["cached"] == [] and len(s["done"]) == 2                # never mixed: rebuilt with the new method
    d = tmp_path / "cache" / "videos" / video_dir_name(idx[0])
    man, _ = check_cached_video(d)
    assert man["settings"]["flow_method"] == "torch" and "torch" in man["versions"]
    assert check_cached_video(d, SMALL)[1].startswith("settings changed: flow_method torch -> opencv")
    flow = np.load(d / "flow.npy").astype(np.float32)
    assert flow.shape == (1, 7, 2, 72, 72) and np.isfinite(flow).all()
