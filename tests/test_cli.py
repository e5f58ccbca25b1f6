"""Tests of mol_edu.cli: mol-train / mol-eval / mol-predict on tiny settings, plus the installed scripts."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mol_edu.cli import build_model, eval_main, model_spec, predict_video, train_main, video_clips, plot_prediction
from mol_edu.checkpoint import read_checkpoint_meta

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    s = train_main(arch="tiny", subjects=3, videos_per_class=1, folds=2, iterations=4, batch_size=4, runs=str(d),
                   name="t", quiet=True)
    return d / "t", s


def test_train_writes_reports_and_checkpoints(run):
    out, s = run
    assert s["n_folds"] == 2 and len(s["folds"]) == 2
    for f in ("config.json", "summary.json", "folds.csv", "predictions.csv", "confusion_video.png",
              "confusion_clip.png", "loss_curves.png", "folds.png"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["loso"]["folds"] == 2 and cfg["model"]["arch"] == "tiny"
    for sub in s["folds"]:
        meta = read_checkpoint_meta(out / "folds" / sub)
        assert meta["iteration"] == 4 and meta["model"]["classes"] == s["classes"]


def test_resume_reuses_finished_folds(run):
    out, s = run
    s2 = train_main(arch="tiny", subjects=3, videos_per_class=1, folds=2, iterations=4, batch_size=4,
                    runs=str(out.parent), name="t", quiet=True, resume=True)
    assert s2["fixed/clip"] == s["fixed/clip"]


def test_eval_matches_the_fold_score(run):
    out, s = run
    sub = s["folds"][0]
    r = eval_main(out / "folds" / sub, subjects=[sub], data_subjects=3, videos_per_class=1)
    preds = [l for l in (out / "predictions.csv").read_text().splitlines()[1:] if l.startswith(sub + ",")]
    assert r["clips"] == len(preds)


def test_predict_on_a_folder_of_face_frames(tmp_path, run):
    from mol_edu.alignment import face_video
    frames = face_video(n=16)
    for i, f in enumerate(frames): cv2.imwrite(str(tmp_path / f"img{i + 1}.jpg"), f)
    clips, pts, ids = video_clips(frames, 16)
    assert clips.shape == (2, 1, 8, 16, 16) and float(clips.min()) >= 0 and float(clips.max()) <= 1
    spec = model_spec("tiny", 5)
    r = predict_video(build_model(spec), spec, list("abcde"), tmp_path)
    assert r["clips"] == 2 and abs(sum(r["probabilities"].values()) - 1) < 1e-5
    plot_prediction(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_bad_arch_is_refused():
    with pytest.raises(ValueError, match="arch"):
        model_spec("huge", 5)


@pytest.mark.parametrize("script", ["mol-train", "mol-eval", "mol-predict"])
def test_console_scripts_are_installed(script):
    exe = Path(sys.executable).parent / script  # installed beside the interpreter running the tests
    assert exe.exists(), f"{script} is not installed: run `make install` (pip install -e .)"
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout


def test_demo_model_choices_are_recorded_and_can_be_switched_off(tmp_path):
    "The demo's two non-released choices are in every run's config, and --mer_norm / --ccc_reading override them."
    from mol_edu.cli import DEMO
    assert DEMO["model_overrides"]["mer_norm"] == "temporal" and DEMO["model_overrides"]["ccc_reading"] == "paper"
    kw = dict(arch="small", subjects=3, videos_per_class=1, folds=1, iterations=1, batch_size=2, runs=str(tmp_path),
              quiet=True)
    train_main(name="demo-like", **kw)
    train_main(name="released-head", mer_norm="none", ccc_reading="released", **kw)
    train_main(name="full-width", full_width=True, **kw)
    demo = json.loads((tmp_path / "demo-like" / "config.json").read_text())["model"]["config"]
    released = json.loads((tmp_path / "released-head" / "config.json").read_text())["model"]["config"]
    assert (demo["mer_norm"], demo["ccc_reading"]) == ("temporal", "paper")
    assert (released["mer_norm"], released["ccc_reading"]) == ("none", "released")
    full = json.loads((tmp_path / "full-width" / "config.json").read_text())["model"]["config"]
    assert (full["mer_norm"], full["ccc_reading"], full["dropout"]) == ("temporal", "paper", 0.0)   # choices kept
    assert full["flow_width"] == 16 and demo["flow_width"] == 4                                     # widths not
    with pytest.raises(ValueError, match="mer_norm: applies to MOL"):
        train_main(arch="tiny", name="x", mer_norm="none", **{k: v for k, v in kw.items() if k != "arch"})


@pytest.mark.parametrize("script,args,message", [
    ("mol-train", ["--mer_norm", "foo"], "mol-train: error: mer_norm must be one of"),
    ("mol-train", ["--arch", "foo"], "mol-train: error: arch: expected one of"),
    ("mol-eval", ["no/such/checkpoint"], "mol-eval: error:"),
    ("mol-predict", ["no/such/checkpoint", "no/such/video.mp4"], "mol-predict: error:"),
])
def test_bad_input_gives_one_line_errors(script, args, message, tmp_path):
    exe = Path(sys.executable).parent / script
    r = subprocess.run([str(exe), *args, "--quiet"] if script == "mol-train" else [str(exe), *args],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith(message), r.stderr


def test_resume_refuses_another_recipe_and_restarts_without_resume(run):
    out, s = run
    kw = dict(arch="tiny", subjects=3, videos_per_class=1, folds=2, batch_size=4, runs=str(out.parent), name="t", quiet=True)
    with pytest.raises(ValueError, match=r"--resume with another recipe \(train changed"):
        train_main(iterations=5, resume=True, **kw)
    with pytest.raises(ValueError, match=r"--resume with another recipe \(model, data changed"):
        train_main(iterations=4, resume=True, **{**kw, "size": 32})
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["iterations"] == 4                                      # the refused runs changed nothing
    assert {"mol_edu", "git_commit", "torch", "numpy", "opencv", "threads", "cpu", "device"} <= set(cfg["environment"])


def test_runs_record_what_they_ran_on(run):
    out, _ = run
    env = json.loads((out / "config.json").read_text())["environment"]
    assert json.loads((out / "summary.json").read_text())["environment"] == env
    assert env["torch"] == torch.__version__ and env["threads"] >= 1 and env["device"] == "cpu"


def test_eval_and_predict_exit_zero_without_dumping_results(run, tmp_path):
    out, s = run
    sub = s["folds"][0]
    r = subprocess.run([str(Path(sys.executable).parent / "mol-eval"), str(out / "folds" / sub), "--subjects", sub,
                        "--data_subjects", "3", "--videos_per_class", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "per video" in r.stdout and len(r.stderr) < 2000                    # no result dict on stderr
    from mol_edu.alignment import face_video
    for i, f in enumerate(face_video(n=16)): cv2.imwrite(str(tmp_path / f"img{i + 1}.jpg"), f)
    r = subprocess.run([str(Path(sys.executable).parent / "mol-predict"), str(tmp_path), str(out / "folds" / sub)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "clips)" in r.stdout and "clip_probabilities" not in r.stderr + r.stdout


def test_main_job_on_a_prepared_corpus_whose_subjects_share_video_names(tmp_path, capsys):
    "mol-train's defaults on a mol-prepare cache: 128x128 crops resized for the small model, every video scored once."
    import warnings
    from mol_edu.alignment import write_face_tree
    from mol_edu.datasets import read_casme2
    from mol_edu.prepare import prepare_index
    root = write_face_tree(tmp_path / "casme2", "casme2", subjects=3, videos=2, frames=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx = read_casme2(root)
        assert len({r.video for r in idx}) == 2 and len(idx) == 6       # the names repeat across the 3 subjects
        prepare_index(idx, tmp_path / "cache", workers=1, progress=False)   # the default settings: 128x128 crops
    s = train_main(dataset=str(tmp_path / "cache"), iterations=2, runs=str(tmp_path / "runs"), name="real", quiet=True)
    assert "resized to the model's 64x64 on the way in" in capsys.readouterr().out
    assert s["n_folds"] == 3 and s["fixed/video"]["n"] == 6 and s["fixed/clip"]["n"] == 6
    rows = (tmp_path / "runs" / "real" / "predictions.csv").read_text().splitlines()[1:]
    assert len({tuple(r.split(",")[:2]) for r in rows}) == 6               # (subject, video) unique
    cfg = json.loads((tmp_path / "runs" / "real" / "config.json").read_text())
    assert cfg["data"]["input"].startswith("clips are 128x128: resized")


def test_loss_weight_and_mirroring_from_the_command_line_reach_the_recipe(tmp_path):
    from mol_edu.cli import _recipe, command_options, train_cli
    cfg = _recipe(command_options(train_cli, dict(lambda_flow=1, hflip=0.5)))
    assert (cfg.loss_weights.mer, cfg.loss_weights.flow, cfg.loss_weights.ldm) == (1.0, 1.0, 0.1) and cfg.hflip == 0.5
    plain = _recipe(command_options(train_cli, {}))
    assert plain.loss_weights.flow == 10.0 and plain.hflip == 0.0                        # the preset's when not given
    s = train_main(arch="tiny", subjects=3, videos_per_class=1, folds=1, iterations=1, batch_size=4, runs=str(tmp_path),
                   name="w", quiet=True, lambda_flow=2.5, hflip=1.0)
    train = json.loads((tmp_path / "w" / "config.json").read_text())["train"]
    assert train["loss_weights"]["flow"] == 2.5 and train["hflip"] == 1.0 and s["n_folds"] == 1
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^lambda_flow: expected a finite weight >= 0"):
            _recipe(command_options(train_cli, dict(lambda_flow=bad)))
    with pytest.raises(ValueError, match=r"^hflip: expected a share in \[0, 1\]"):
        _recipe(command_options(train_cli, dict(hflip=2.0)))
