"""Bad and unusual input at every entry point gives a clear one-line error naming the file, row or field (or a
warning naming it, where the run can go on): never a traceback, a silent wrong answer or a hang.

Each case runs its entry point's body through `run_command`, exactly as the console scripts do, and checks the
exit status 2 and the single line on stderr. The property-based tests at the end mutate spreadsheets, frames and
cache files at random and check the same contract.
"""
import contextlib
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from mol_edu.alignment import PrepareSettings, face_video, write_face_tree
from mol_edu.checkpoint import load_weights
from mol_edu.cli import build_model, eval_main, model_spec, predict_video, train_main
from mol_edu.core import run_command
from mol_edu.datasets import read_casme2, read_release_layout, read_samm, read_smic, write_demo_tree
from mol_edu.model import MOL, MOLConfig
from mol_edu.prepare import PreparedDataset, prepare_index, prepare_main
from mol_edu.synthetic import synth_main

SMALL = PrepareSettings(align_size=72, crop_size=64)
TINY = dict(arch="tiny", subjects=3, videos_per_class=1, folds=1, iterations=1, batch_size=2, quiet=True)


def outcome(fn):
    "('ok' | 'error' | 'crash', stderr line or exception, warnings) of `fn` run as a console script runs it."
    err = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try: run_command("prog", fn); kind = "ok"
        except SystemExit as e: kind = "error" if e.code == 2 else f"exit {e.code}"
        except BaseException as e: return "crash", f"{type(e).__name__}: {e}", []
    return kind, err.getvalue(), [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    "The world the cases damage copies of: demo trees, a face tree and its cache, a trained checkpoint, a model."
    root = tmp_path_factory.mktemp("bad")
    W = {"tmp": root}
    for ds in ("casme2", "samm", "smic", "release"):
        W[ds] = write_demo_tree(root / "trees" / ds, ds, subjects=2, videos=2, frames=8)
    W["faces"] = write_face_tree(root / "faces" / "casme2", "casme2", subjects=2, videos=1, frames=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_index(read_casme2(W["faces"]), root / "cache", SMALL, workers=1, progress=False)
    W["cache"] = root / "cache"
    train_main(**TINY, runs=str(root / "runs"), name="ok")
    W["ckpt"] = next((root / "runs" / "ok" / "folds").iterdir())
    (root / "afile").write_text("not a folder")
    W["file"] = root / "afile"
    W["mol"] = MOL(MOLConfig.preset("small"))
    return W


def copy(w, key, name):
    "A fresh copy of w[key] to damage."
    dst = w["tmp"] / "copies" / name
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(w[key], dst)
    return dst


def sheet(root): return next(Path(root).glob("*.xlsx"))


def edit_sheet(root, fn):
    s = sheet(root); df = pd.read_excel(s, dtype=object); out = fn(df)
    (df if out is None else out).to_excel(s, index=False); return root


def first_video(cache): return next(d for d in (Path(cache) / "videos").iterdir() if not d.name.startswith("."))


def _frames_folder(w, name, frames):
    d = w["tmp"] / "frames" / name; d.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames): cv2.imwrite(str(d / f"img{i}.jpg"), f)
    return d


def _tiny(): s = model_spec("tiny", 5); return build_model(s), s


def _manifest_edit(w, name, fn):
    c = copy(w, "cache", name); v = first_video(c); m = json.loads((v / "manifest.json").read_text()); fn(m)
    (v / "manifest.json").write_text(json.dumps(m)); return c


def _ckpt_edit(w, name, fn):
    c = copy(w, "ckpt", name); fn(c); return c


E, WARN = "error", "warning"
CASES = [
    # --- readers ---------------------------------------------------------------------------------------------
    ("reader: no root", lambda w: lambda: read_casme2(w["tmp"] / "nope"), E, r"root folder .*nope does not exist"),
    ("reader: root is a file", lambda w: lambda: read_casme2(w["file"]), E, r"afile is a file, expected a folder"),
    ("reader: empty root", lambda w: (lambda d: (d.mkdir(exist_ok=True), lambda: read_casme2(d))[1])(w["tmp"] / "empty"),
     E, r"empty: found an empty folder|under .*empty, found an empty folder"),
    ("reader: no sheet", lambda w: (lambda r: (sheet(r).unlink(), lambda: read_casme2(r))[1])(copy(w, "casme2", "nosheet")),
     E, r"no coding sheet matching"),
    ("reader: CSV saved as .xlsx", lambda w: (lambda r: (sheet(r).write_text("Subject,Filename\n1,EP\n"),
                                                         lambda: read_casme2(r))[1])(copy(w, "casme2", "csv")),
     E, r"CASME2-coding-20140508\.xlsx: not a readable Excel workbook"),
    ("reader: corrupt workbook", lambda w: (lambda r: (sheet(r).write_bytes(b"PK\x03\x04" + b"\x00" * 64),
                                                       lambda: read_casme2(r))[1])(copy(w, "casme2", "zip")),
     E, r"\.xlsx: not a readable Excel workbook \(BadZipFile"),
    ("reader: missing column", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "col"), lambda df: df.drop(columns=["Estimated Emotion"]))),
     E, r"lacks column\(s\) \['Estimated Emotion'\]"),
    ("reader: zero rows", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "rows0"), lambda df: df.iloc[:0])), E, r"no usable samples in .*\.xlsx"),
    ("reader: unknown protocol", lambda w: lambda: read_casme2(w["casme2"], protocol="7class"), E,
     r"protocol '7class' is not defined for 'casme2'"),
    ("reader: unknown emotion", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "emo"), lambda df: df.__setitem__("Estimated Emotion", ["bliss"] + list(df["Estimated Emotion"][1:])))),
     WARN, r"\.xlsx row 2: unknown emotion 'bliss'"),
    ("reader: subject not a number", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "subj"), lambda df: df.__setitem__("Subject", ["abc"] + list(df["Subject"][1:])))),
     WARN, r"row 2: cannot read subject 'abc'"),
    ("reader: onset after offset", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "onset"), lambda df: df.__setitem__("OnsetFrame", [10 ** 5] + list(df["OnsetFrame"][1:])))),
     WARN, r"row 2: onset 100000 is after offset"),
    ("reader: apex not a number", lambda w: (lambda r: lambda: read_casme2(r))(
        edit_sheet(copy(w, "casme2", "apex"), lambda df: df.__setitem__("ApexFrame", ["/"] + list(df["ApexFrame"][1:])))),
     WARN, r"row 2: ApexFrame is '/' \(missing\); kept as None"),
    ("reader: sheet given but missing", lambda w: lambda: read_casme2(w["casme2"], sheet=w["tmp"] / "none.xlsx"), E,
     r"coding sheet .*none\.xlsx not found"),
    ("reader: frame file without a number", lambda w: (lambda r: (
        next((r / "CASME2_RAW_selected").rglob("*.jpg")).rename(next((r / "CASME2_RAW_selected").rglob("*.jpg")).with_name("imgX.jpg")),
        lambda: read_casme2(r))[1])(copy(w, "casme2", "fname")), WARN, r"imgX\.jpg: frame file nam"),
    ("reader: a video folder missing", lambda w: (lambda r: (shutil.rmtree(r / "CASME2_RAW_selected" / "sub02" / "EP02_01f"),
                                                              lambda: read_casme2(r))[1])(copy(w, "casme2", "vid")),
     WARN, r"row \d+: video folder .*not found"),
    ("reader: SAMM without its sheet", lambda w: (lambda r: (sheet(r).unlink(), lambda: read_samm(r))[1])(copy(w, "samm", "s1")),
     E, r"SAMM: no coding sheet matching"),
    ("reader: SAMM sheet without a header", lambda w: (lambda r: (pd.DataFrame({"a": [1, 2]}).to_excel(sheet(r), index=False),
                                                                   lambda: read_samm(r))[1])(copy(w, "samm", "s2")),
     E, r"SAMM: no header row with 'Subject' and 'Filename'"),
    ("reader: SMIC without HS", lambda w: (lambda r: (shutil.rmtree(r / "HS"), lambda: read_smic(r))[1])(copy(w, "smic", "h")),
     E, r"SMIC: expected HS/"),
    ("reader: SMIC 5-class", lambda w: lambda: read_smic(w["smic"], protocol="5class"), E, r"protocol '5class' is not defined for 'smic'"),
    ("reader: release layout empty", lambda w: (lambda d: (d.mkdir(exist_ok=True), lambda: read_release_layout(d))[1])(w["tmp"] / "rel0"),
     E, r"release layout: expected a folder named like CASME2_data_5"),
    # --- mol-prepare ---------------------------------------------------------------------------------------------
    ("prepare: unknown dataset", lambda w: lambda: prepare_main("foo", w["faces"]), E, r"dataset: expected one of \['casme2'"),
    ("prepare: output is a file", lambda w: lambda: prepare_main("casme2", w["faces"], out=w["file"], workers=1, progress=False),
     E, r"afile: exists and is not a folder"),
    ("prepare: unknown flow method", lambda w: lambda: prepare_main("casme2", w["faces"], out=w["tmp"] / "p1", flow="x"),
     E, r"flow_method must be one of \('opencv', 'torch'\)"),
    ("prepare: negative limit", lambda w: lambda: prepare_main("casme2", w["faces"], limit=-1), E, r"limit: expected >= 0"),
    ("prepare: truncated frame", lambda w: (lambda r: (
        (lambda f: f.write_bytes(f.read_bytes()[:300]))(sorted((r / "CASME2_RAW_selected" / "sub01" / "EP01_01f").glob("*.jpg"))[2]),
        lambda: prepare_main("casme2", r, out=w["tmp"] / "ptr", workers=1, progress=False))[1])(copy(w, "faces", "trunc")),
     "ok-skip", r"truncated image"),
    ("prepare: unreadable frame", lambda w: (lambda r: (
        sorted((r / "CASME2_RAW_selected" / "sub01" / "EP01_01f").glob("*.jpg"))[1].write_bytes(b"not a jpeg"),
        lambda: prepare_main("casme2", r, out=w["tmp"] / "pur", workers=1, progress=False))[1])(copy(w, "faces", "unread")),
     "ok-skip", r"unreadable or corrupt image"),
    ("prepare: every video unusable", lambda w: (lambda r: (
        [f.write_bytes(b"x") for f in (r / "CASME2_RAW_selected").rglob("*.jpg")],
        lambda: prepare_main("casme2", r, out=w["tmp"] / "pnone", workers=1, progress=False))[1])(copy(w, "faces", "none")),
     E, r"no video could be prepared"),
    # --- the cache -----------------------------------------------------------------------------------------------
    ("cache: missing", lambda w: lambda: PreparedDataset(w["tmp"] / "nocache"), E, r"nocache: not a prepared cache"),
    ("cache: a file", lambda w: lambda: PreparedDataset(w["file"]), E, r"afile: not a prepared cache"),
    ("cache: manifest not JSON", lambda w: (lambda c: ((first_video(c) / "manifest.json").write_text("{bad"),
                                                         lambda: PreparedDataset(c))[1])(copy(w, "cache", "mj")),
     E, r"manifest\.json \(JSONDecodeError\)"),
    ("cache: manifest edited (label)", lambda w: (lambda c: lambda: PreparedDataset(c))(
        _manifest_edit(w, "ml", lambda m: m["record"].__setitem__("label", 4))), E, r"edited: hash mismatch"),
    ("cache: manifest edited (classes)", lambda w: (lambda c: lambda: PreparedDataset(c))(
        _manifest_edit(w, "mc", lambda m: m["record"].__setitem__("classes", ["a", "b"]))), E, r"edited: hash mismatch"),
    ("cache: array damaged", lambda w: (lambda c: ((first_video(c) / "frames.npy").write_bytes(b"junk"),
                                                     lambda: PreparedDataset(c))[1])(copy(w, "cache", "ad")),
     E, r"frames\.npy \(hash mismatch\)"),
    ("cache: array missing", lambda w: (lambda c: ((first_video(c) / "flow.npy").unlink(), lambda: PreparedDataset(c))[1])(
        copy(w, "cache", "am")), E, r"missing file .*flow\.npy"),
    ("cache: pickled array, hashes off", lambda w: (lambda c: (
        np.save(first_video(c) / "frames.npy", np.zeros((2, 2), object), allow_pickle=True),
        lambda: PreparedDataset(c, verify=False)[0])[1])(copy(w, "cache", "pk")), E, r"frames\.npy: not a plain array"),
    ("cache: empty videos folder", lambda w: (lambda c: ([shutil.rmtree(d) for d in (c / "videos").iterdir()],
                                                           lambda: PreparedDataset(c))[1])(copy(w, "cache", "ev")),
     E, r"the cache holds no prepared videos"),
    # --- mol-synth -----------------------------------------------------------------------------------------------
    ("synth: no subjects", lambda w: lambda: synth_main(w["tmp"] / "s0", subjects=0), E, r"subjects: expected >= 1"),
    ("synth: unknown scheme", lambda w: lambda: synth_main(w["tmp"] / "s1", subjects=1, scheme="ck"), E, r"scheme: expected one of"),
    ("synth: output is a file", lambda w: lambda: synth_main(w["file"], subjects=1), E, r"afile: exists and is not a folder"),
    ("synth: JPEG quality 0", lambda w: lambda: synth_main(w["tmp"] / "s2", subjects=1, quality=0), E, r"quality: expected 1\.\.100"),
    ("synth: unknown view", lambda w: lambda: synth_main(w["tmp"] / "s3", subjects=1, view="side"), E, r"view: expected one of"),
    ("synth: amplitude low > high", lambda w: lambda: synth_main(w["tmp"] / "s4", subjects=1, amplitude_low=3, amplitude_high=1),
     E, r"amplitude: expected 0 <= low <= high"),
    ("synth: tiny frames", lambda w: lambda: synth_main(w["tmp"] / "s5", subjects=1, size=8), E, r"size: expected >= 16"),
    # --- mol-train -----------------------------------------------------------------------------------------------
    ("train: unknown arch", lambda w: lambda: train_main(**{**TINY, "arch": "huge"}), E, r"arch: expected one of"),
    ("train: unknown preset", lambda w: lambda: train_main(**{**TINY, "preset": "fast"}), E, r"preset: expected one of"),
    ("train: unknown precision", lambda w: lambda: train_main(**{**TINY, "precision": "fp8"}), E, r"precision: expected one of"),
    ("train: unknown optimiser", lambda w: lambda: train_main(**{**TINY, "optimizer": "lbfgs"}), E, r"optimizer: expected one of"),
    ("train: unknown selection", lambda w: lambda: train_main(**{**TINY, "selection": "best"}), E, r"selection: expected"),
    ("train: best_on_test without eval_every", lambda w: lambda: train_main(**{**TINY, "selection": "best_on_test"}),
     E, r"eval_every: best_on_test needs"),
    ("train: one subject", lambda w: lambda: train_main(**{**TINY, "subjects": 1}), E, r"LOSO: needs at least 2 subjects"),
    ("train: no subjects", lambda w: lambda: train_main(**{**TINY, "subjects": 0}), E, r"subjects: expected at least one"),
    ("train: negative folds", lambda w: lambda: train_main(**{**TINY, "folds": -1}), E, r"folds: expected >= 1"),
    ("train: batch 0", lambda w: lambda: train_main(**{**TINY, "batch_size": 0}), E, r"batch_size: expected >= 1"),
    ("train: negative lr", lambda w: lambda: train_main(**{**TINY, "lr": -1.0}), E, r"lr: expected a positive number"),
    ("train: NaN lr", lambda w: lambda: train_main(**{**TINY, "lr": float("nan")}), E, r"lr: expected a positive number"),
    ("train: negative iterations", lambda w: lambda: train_main(**{**TINY, "iterations": -3}), E, r"iterations: expected >= 0"),
    ("train: unknown device", lambda w: lambda: train_main(**{**TINY, "device": "tpu"}), E, r"unknown device 'tpu'"),
    ("train: dataset missing", lambda w: lambda: train_main(**{**TINY, "dataset": str(w["tmp"] / "nope")}), E, r"nope: not a prepared cache"),
    ("train: runs is a file", lambda w: lambda: train_main(**{**TINY, "runs": str(w["file"])}), E, r"runs: .*afile is a file"),
    ("train: size not a multiple of 64", lambda w: lambda: train_main(**{**TINY, "arch": "small", "size": 50}), E, r"image_size"),
    ("train: unknown mer_norm", lambda w: lambda: train_main(**{**TINY, "arch": "small", "mer_norm": "x"}), E, r"mer_norm must be one of"),
    ("train: MOL option on tiny", lambda w: lambda: train_main(**{**TINY, "ccc_reading": "paper"}), E, r"ccc_reading: applies to MOL"),
    ("train: unknown option", lambda w: lambda: train_main(**TINY, epochs=3), E, r"unknown option\(s\) \['epochs'\]"),
    ("train: resume with another recipe", lambda w: lambda: train_main(**{**TINY, "iterations": 2}, runs=str(w["tmp"] / "runs"),
                                                                        name="ok", resume=True), E, r"--resume with another recipe"),
    ("train: damaged fold record", lambda w: (lambda r: (
        (r / "ok" / "folds" / next((r / "ok" / "folds").iterdir()).name / "fold.json").write_text("{"),
        lambda: train_main(**TINY, runs=str(r), name="ok", resume=True))[1])(copy_tree(w["tmp"] / "runs", w["tmp"] / "runs_fj")),
     E, r"fold\.json: not valid JSON"),
    ("train: NaN in a clip", lambda w: lambda: _train_on_nan(), E, r"loss: not finite at iteration 1"),
    # --- mol-eval, mol-predict, checkpoints ---------------------------------------------------------------------
    ("eval: no checkpoint", lambda w: lambda: eval_main(w["tmp"] / "none"), E, r"checkpoint .*none: not a folder"),
    ("eval: a run folder, not a fold", lambda w: lambda: eval_main(w["tmp"] / "runs" / "ok"), E, r"no checkpoint\.json"),
    ("eval: unknown subject", lambda w: lambda: eval_main(w["ckpt"], subjects=["sub99"], data_subjects=3, videos_per_class=1),
     E, r"subjects: \['sub99'\] not in"),
    ("eval: unknown arch in checkpoint", lambda w: (lambda c: lambda: eval_main(c))(_ckpt_edit(w, "ua", lambda c: (
        c / "checkpoint.json").write_text(json.dumps({**json.loads((c / "checkpoint.json").read_text()),
                                                      "model": {"arch": "huge", "config": {}}})))), E, r"model: unknown arch 'huge'"),
    ("eval: checkpoint manifest not JSON", lambda w: (lambda c: lambda: eval_main(c))(
        _ckpt_edit(w, "cj", lambda c: (c / "checkpoint.json").write_text("nope"))), E, r"checkpoint\.json: not valid JSON"),
    ("eval: weights damaged", lambda w: (lambda c: lambda: eval_main(c))(_ckpt_edit(w, "wd", lambda c: next(
        c.glob("model-*.safetensors")).write_bytes(b"\x00" * 16))), E, r"does not match checkpoint\.json .*refusing a mixed set"),
    ("eval: older checkpoint with pickled state", lambda w: (lambda c: lambda: _resume_old(c))(_old_ckpt(w)), E,
     r"written by an older mol_edu \(state\.pt\)"),
    ("predict: missing video", lambda w: lambda: predict_video(*_tiny(), list("abcde"), w["tmp"] / "none.mp4"),
     E, r"none\.mp4 does not exist"),
    ("predict: not a video", lambda w: lambda: predict_video(*_tiny(), list("abcde"), w["file"]), E, r"expected a folder or a video file"),
    ("predict: empty folder", lambda w: (lambda d: (d.mkdir(exist_ok=True), lambda: predict_video(*_tiny(), list("abcde"), d))[1])(
        w["tmp"] / "noimg"), E, r"no image files in .*noimg"),
    ("predict: corrupt video file", lambda w: (lambda f: (f.write_bytes(b"notavideo"), lambda: predict_video(*_tiny(), list("abcde"), f))[1])(
        w["tmp"] / "bad.mp4"), E, r"could not read any frame from .*bad\.mp4"),
    ("predict: too few frames", lambda w: (lambda d: lambda: predict_video(*_tiny(), list("abcde"), d))(
        _frames_folder(w, "short", face_video(n=5))), E, r"short: a video needs at least 8 frames"),
    ("predict: no face", lambda w: (lambda d: lambda: predict_video(*_tiny(), list("abcde"), d))(
        _frames_folder(w, "noface", [np.full((90, 90, 3), 128, np.uint8)] * 8)), E, r"noface: .*no face found in any of its 8 frames"),
    ("weights: missing file", lambda w: lambda: load_weights(w["mol"], w["tmp"] / "none.safetensors"), E, r"none\.safetensors: no such"),
    ("weights: empty file", lambda w: (lambda f: (f.write_bytes(b""), lambda: load_weights(w["mol"], f))[1])(w["tmp"] / "e.safetensors"),
     E, r"e\.safetensors: not a readable safetensors file"),
    ("weights: another architecture", lambda w: lambda: load_weights(w["mol"], w["ckpt"]), E, r"weights do not fit this model: \d+ missing"),
    # --- MOL.forward ---------------------------------------------------------------------------------------------
    ("forward: uint8 clip", lambda w: lambda: w["mol"](torch.zeros(1, 1, 8, 64, 64, dtype=torch.uint8)), E, r"clip: expected a floating-point tensor"),
    ("forward: float64 clip", lambda w: lambda: w["mol"](torch.zeros(1, 1, 8, 64, 64, dtype=torch.float64)), E, r"clip: dtype torch\.float64 differs"),
    ("forward: NumPy clip", lambda w: lambda: w["mol"](np.zeros((1, 1, 8, 64, 64), np.float32)), E, r"clip: expected a floating-point tensor"),
    ("forward: wrong size", lambda w: lambda: w["mol"](torch.zeros(1, 1, 8, 32, 32)), E, r"clip: expected shape \(B, 1, T=8, H=64, W=64\)"),
    ("forward: 7 frames", lambda w: lambda: w["mol"](torch.zeros(1, 1, 7, 64, 64)), E, r"clip: expected shape"),
    ("forward: no channel axis", lambda w: lambda: w["mol"](torch.zeros(1, 8, 64, 64)), E, r"clip: expected shape"),
    ("predict(): NaN clip", lambda w: lambda: _predict_nan(w), E, r"clip: NaN or inf values in the clips of"),
    ("config: channels not a multiple of 16", lambda w: lambda: MOLConfig(channels=30), E, r"channels must be a multiple of 16"),
    ("config: unknown preset", lambda w: lambda: MOLConfig.preset("huge"), E, r"preset: expected one of"),
]


def copy_tree(src, dst):
    if dst.exists(): shutil.rmtree(dst)
    shutil.copytree(src, dst); return dst


def _train_on_nan():
    from mol_edu.train import TinyJointNet, ToyMotionClips, TrainConfig, Trainer
    ds = ToyMotionClips(n=8); ds.samples[0]["clip"][0, 2, 3, 3] = float("nan")
    Trainer(TinyJointNet(), ds, TrainConfig(batch_size=8, iterations=2), device="cpu").fit()


def _predict_nan(w):
    from mol_edu.train import TinyJointNet, ToyMotionClips, predict
    ds = ToyMotionClips(n=4); ds.samples[1]["clip"][0, 0, 0, 0] = float("inf")
    predict(TinyJointNet(), ds, "cpu")


def _old_ckpt(w):
    c = copy(w, "ckpt", "old")
    m = json.loads((c / "checkpoint.json").read_text()); m.pop("format"); m.pop("files")
    next(c.glob("model-*.safetensors")).rename(c / "model.safetensors")
    (c / "checkpoint.json").write_text(json.dumps(m)); torch.save({"optimizer": {}}, c / "state.pt")
    return c


def _resume_old(c):
    from mol_edu.train import TinyJointNet, ToyMotionClips, TrainConfig, Trainer
    Trainer(TinyJointNet(), ToyMotionClips(n=4), TrainConfig(), device="cpu").load_checkpoint(c)


def test_the_table_is_large_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,make,kind,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input(w, name, make, kind, pattern):
    got, text, warned = outcome(make(w))
    assert got != "crash", f"{name}: a traceback instead of one line: {text}"
    if kind == E:
        assert got == "error", f"{name}: expected a one-line error, got {got} (warnings: {warned})"
        lines = text.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("prog: error: "), text
        assert re.search(pattern, lines[0]), f"{name}: {lines[0]!r} does not match {pattern!r}"
    elif kind == WARN:
        assert got == "ok", f"{name}: the run should go on with a warning, got {got}: {text}"
        assert any(re.search(pattern, m) for m in warned), f"{name}: no warning matching {pattern!r} in {warned}"
    else:                                                     # ok-skip: mol-prepare goes on, the bad video skipped by name
        assert got == "ok", f"{name}: expected the run to finish, got {got}: {text}"


# --- property-based: random damage to the three kinds of file users hand us ----------------------------------------

HYP = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])


def _contract(fn):
    "Either it works, or it stops with one line: never a traceback."
    got, text, _ = outcome(fn)
    assert got in ("ok", "error"), f"{got}: {text}"
    if got == "error": assert len(text.strip().splitlines()) == 1, text


@HYP
@given(st.data())
def test_mutated_spreadsheets(w, data):
    r = copy(w, "casme2", "hyp-sheet")
    df = pd.read_excel(sheet(r), dtype=object)
    for _ in range(data.draw(st.integers(1, 4))):
        row, col = data.draw(st.integers(0, len(df) - 1)), data.draw(st.sampled_from(list(df.columns)))
        df.loc[row, col] = data.draw(st.one_of(st.none(), st.integers(-5, 10 ** 6), st.text(alphabet=st.characters(codec='ascii', categories=['L', 'N', 'P', 'Zs']), max_size=8), st.floats(allow_nan=True)))
    if data.draw(st.booleans()): df = df.drop(columns=[data.draw(st.sampled_from(list(df.columns)))])
    df.to_excel(sheet(r), index=False)
    _contract(lambda: read_casme2(r))


@HYP
@given(cut=st.floats(0.0, 0.99), flip=st.integers(0, 5000), which=st.integers(0, 7))
def test_mutated_frames(w, cut, flip, which):
    r = copy(w, "faces", "hyp-frames")
    f = sorted((r / "CASME2_RAW_selected" / "sub01" / "EP01_01f").glob("*.jpg"))[which]
    b = bytearray(f.read_bytes())
    if flip < len(b): b[flip] ^= 0xFF
    f.write_bytes(bytes(b[: max(1, int(len(b) * (1 - cut)))]))
    out = w["tmp"] / "hyp-frames-cache"
    if out.exists(): shutil.rmtree(out)
    settings_ = SMALL
    _contract(lambda: prepare_index(read_casme2(r), out, settings_, workers=1, progress=False))


@HYP
@given(name=st.sampled_from(["manifest.json", "frames.npy", "landmarks.npy", "flow.npy", "align.npy", "face_found.npy"]),
       pos=st.integers(0, 4000), cut=st.booleans())
def test_mutated_cache_files(w, name, pos, cut):
    c = copy(w, "cache", "hyp-cache")
    f = first_video(c) / name
    b = bytearray(f.read_bytes())
    if cut: b = b[: pos % max(len(b), 1)]
    elif b: b[pos % len(b)] ^= 0x5A
    f.write_bytes(bytes(b))
    _contract(lambda: PreparedDataset(c)[0])
    _contract(lambda: PreparedDataset(c, verify=False)[len(PreparedDataset(c, verify=False)) - 1])
