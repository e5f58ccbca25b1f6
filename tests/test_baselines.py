"""The baselines MOL is compared with, STSTNet (key frames, chapter 28a) and a plain 3D CNN (chapter 28b): their
inputs, shapes and gradients, training by name with mol-train, reloading their checkpoints, and the lazy registry."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from mol_edu.cli import BASELINE_ARCHS, DEMO, build_model, eval_main, load_checkpoint_model, model_spec, train_main
from mol_edu.cnn3d import CNN3D, CNN3DConfig, model_cost
from mol_edu.ststnet import (OracleApexTrainer, STSTNet, STSTNetConfig, accumulated_flow, affine_residual,
                             classification_terms, optical_strain, oracle_apex, resolve_apex, stst_input_maps,
                             ststnet_inputs, synthetic_plan_apex)
from mol_edu.synthetic import SyntheticMicroExpressions
from mol_edu.train import CLIP_MEAN, CLIP_SCALE, TrainConfig, Trainer, mol_inputs, predict
from mol_edu.tvl1 import TVL1Settings, tvl1_flow_torch

torch.set_num_threads(1)
QUICK = dict(warps=1, outerIterations=1, innerIterations=10)   # a cheap TV-L1 where the flow's quality is not tested


@pytest.fixture(scope="module")
def corpus():
    return SyntheticMicroExpressions(subjects=2, videos_per_class=1, size=64)


@pytest.fixture(scope="module")
def batch(corpus):
    return default_collate([corpus[i] for i in range(0, len(corpus), 6)][:5])


def quick_ststnet(**kw):
    return STSTNet(STSTNetConfig(**{"tvl1": QUICK, **kw}))


# --- STSTNet's input maps -------------------------------------------------------------------------------------

def _strain_reference(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    "|eps| of one flow by central differences on an edge-padded copy (halved one-sided differences on the border)."
    pu, pv = np.pad(u, 1, mode="edge"), np.pad(v, 1, mode="edge")
    dx = lambda p: (p[1:-1, 2:] - p[1:-1, :-2]) / 2
    dy = lambda p: (p[2:, 1:-1] - p[:-2, 1:-1]) / 2
    exy = (dy(pu) + dx(pv)) / 2
    return np.sqrt(dx(pu) ** 2 + dy(pv) ** 2 + 2 * exy ** 2)


def _maps_per_clip(clip01, apex, flow_size, map_size, settings):
    "The input maps one clip at a time: TV-L1 on one pair, strain in numpy, then area-averaged to map_size."
    out = []
    for b in range(len(clip01)):
        pair = F.interpolate(clip01[b, [0, int(apex[b])]][None], size=(flow_size, flow_size), mode="area")[0]
        u, v = tvl1_flow_torch(pair[0], pair[1], settings)
        strain = torch.from_numpy(_strain_reference(u.numpy(), v.numpy()))
        maps = F.adaptive_avg_pool2d(torch.stack([u, v, strain.float()])[None], map_size)[0]
        maps[:2] *= map_size / flow_size
        out.append(maps)
    return torch.stack(out)


@pytest.mark.parametrize("flow_size", [64, 28])
def test_batched_input_maps_equal_the_per_clip_ones(batch, flow_size):
    clip01, apex = batch["clip"][:, 0], torch.tensor([1, 3, 4, 6, 7])
    settings = TVL1Settings(**QUICK)
    got = stst_input_maps(clip01, apex, flow_size, 28, settings)
    assert got.shape == (5, 3, 28, 28)
    torch.testing.assert_close(got, _maps_per_clip(clip01, apex, flow_size, 28, settings), atol=1e-4, rtol=1e-4)
    other = stst_input_maps(clip01, torch.tensor([2, 3, 4, 6, 7]), flow_size, 28, settings)
    assert not torch.allclose(other[0], got[0])          # another apex frame, other maps: the apex is really used


def test_optical_strain_of_linear_fields():
    yy, xx = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    fields = {"stretch": ([0.02 * xx, 0 * xx], 0.02), "rotation": ([-0.02 * yy, 0.02 * xx], 0.0),
              "translation": ([0 * xx + 0.7, 0 * xx - 0.3], 0.0), "scale": ([0.01 * xx, 0.01 * yy], 0.01 * 2 ** 0.5),
              "shear": ([0.04 * yy, 0 * xx], 0.02 * 2 ** 0.5)}
    for name, (f, want) in fields.items():
        got = optical_strain(torch.stack(f)[None])
        assert got.shape == (1, 1, 9, 9)
        assert abs(float(got[0, 0, 4, 4]) - want) < 1e-6, name
    with pytest.raises(ValueError, match="flow: expected shape"):
        optical_strain(torch.zeros(1, 3, 9, 9))


def _drift_and_blob(apex: int, T: int = 8, S: int = 24) -> torch.Tensor:
    "(1, T-1, 2, S, S) consecutive flow: the whole face drifts right, a blob moves up and back with its peak at apex."
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")
    blob = torch.exp(-((xx - 8) ** 2 + (yy - 12) ** 2) / 8)
    level = torch.tensor([t / apex if t <= apex else (T - 1 - t) / (T - 1 - apex) for t in range(T)])   # 0, up, 1, down, 0
    D = level[:, None, None, None] * torch.stack([0 * blob, -1.5 * blob])
    D = D + 0.3 * torch.arange(T, dtype=torch.float32)[:, None, None, None] * torch.tensor([1.0, 0.0])[:, None, None]
    return (D[1:] - D[:-1])[None]


def test_oracle_apex_sees_through_a_drifting_head():
    flow = torch.cat([_drift_and_blob(2), _drift_and_blob(5)])
    assert oracle_apex(flow).tolist() == [2, 5]
    plain = accumulated_flow(flow).norm(dim=2).mean((2, 3)).argmax(1) + 1
    assert plain.tolist() == [7, 7]                        # the plain rule follows the drift to the last frame
    yy, xx = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    affine = torch.stack([0.3 + 0.02 * xx - 0.01 * yy, -0.2 + 0.01 * xx + 0.03 * yy])
    assert float(affine_residual(affine)) < 1e-4
    with pytest.raises(ValueError, match="flow: expected shape"):
        oracle_apex(flow[0])


def test_oracle_apex_agrees_with_the_generators_plan(corpus):
    planned = np.array([synthetic_plan_apex(corpus, i) for i in range(len(corpus))])
    flow = torch.stack([corpus[i]["flow"] for i in range(len(corpus))])
    got = oracle_apex(flow).numpy()
    assert np.mean(np.abs(got - planned) <= 1) >= 0.9
    assert np.mean(got == planned) > np.mean(planned == 4)  # better than the middle frame


# --- STSTNet, the model ---------------------------------------------------------------------------------------

def test_ststnet_shapes_apex_sources_and_shift(batch):
    net = quick_ststnet(classes=3).eval()
    out = net(mol_inputs(batch))
    assert out.logits.shape == (5, 3) and out.apex.tolist() == [4] * 5
    assert getattr(out, "flow", None) is None and getattr(out, "landmarks", None) is None
    oracle = oracle_apex(batch["flow"])
    assert net(ststnet_inputs(batch)).apex.tolist() == oracle.tolist()
    net.apex_shift = 2
    assert net(ststnet_inputs(batch)).apex.tolist() == (oracle + 2).clamp(1, 7).tolist()
    assert net(mol_inputs(batch)).apex.tolist() == [6] * 5
    assert quick_ststnet(apex=2, apex_shift=-1)(mol_inputs(batch)).apex.tolist() == [1] * 5
    clip01 = mol_inputs(batch)[:, 0] * CLIP_SCALE + CLIP_MEAN
    maps, t = quick_ststnet().input_maps(mol_inputs(batch))
    torch.testing.assert_close(maps, stst_input_maps(clip01, t, settings=TVL1Settings(**QUICK)), atol=0, rtol=0)
    with pytest.raises(ValueError, match="feed it ststnet_inputs"):
        quick_ststnet(apex="oracle")(mol_inputs(batch))
    with pytest.raises(ValueError, match="clip: expected shape"):
        net(mol_inputs(batch)[:, :, :7])


def test_resolve_apex_keeps_the_apex_inside_the_clip():
    assert resolve_apex("middle", 2, 8).tolist() == [4, 4]
    assert resolve_apex(torch.tensor([1, 6]), 2, 8, shift=8).tolist() == [7, 7]
    assert resolve_apex(3, 2, 8, shift=-5).tolist() == [1, 1]
    with pytest.raises(ValueError, match="apex: expected 'middle'"):
        resolve_apex("apex", 2, 8)


def test_ststnet_maps_stay_float32_under_autocast(batch):
    net = quick_ststnet()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        maps, _ = net.input_maps(mol_inputs(batch))
        out = net(mol_inputs(batch))
    assert maps.dtype == torch.float32 and torch.isfinite(out.logits.float()).all()


@pytest.mark.parametrize("make", [lambda: quick_ststnet(), lambda: CNN3D()], ids=["ststnet", "cnn3d"])
def test_gradients_reach_every_weight(batch, make):
    net = make()
    terms = classification_terms(net(mol_inputs(batch)), batch)
    assert set(terms) == {"loss", "mer"} and terms["loss"].dim() == 0
    terms["loss"].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_configs_refuse_bad_fields():
    for bad, message in [(dict(widths=(3, 5)), "widths: expected 3"), (dict(apex=0), "apex: expected"),
                         (dict(apex="peak"), "apex: expected"), (dict(tvl1={"iters": 2}), r"tvl1: unknown field\(s\) \['iters'\]"),
                         (dict(tvl1={"tau": -1.0}), "tau: expected > 0")]:
        with pytest.raises(ValueError, match=message):
            STSTNetConfig(**bad)
    with pytest.raises(ValueError, match=r"widths: expected one positive int per time stride"):
        CNN3DConfig(widths=(8, 16))
    with pytest.raises(ValueError, match=r"ststnet: unknown config field\(s\) \['colour'\]"):
        model_spec("ststnet", 5, colour=1)
    with pytest.raises(ValueError, match=r"cnn3d: unknown config field\(s\) \['depth'\]"):
        model_spec("cnn3d", 5, depth=3)


# --- the 3D CNN -----------------------------------------------------------------------------------------------

def test_cnn3d_shapes_and_cost_match_the_demo_mol():
    net = CNN3D(CNN3DConfig(classes=4))
    out = net(torch.randn(3, 1, 8, 64, 64))
    assert out.logits.shape == (3, 4) and getattr(out, "flow", None) is None
    one = torch.zeros(1, 1, 8, 64, 64)
    mine, mol = model_cost(CNN3D(), one), model_cost(build_model(model_spec("small", 5, **DEMO["model_overrides"])), one)
    assert abs(mine["parameters"] / mol["parameters"] - 1) < 0.05
    assert abs(mine["flops"] / mol["flops"] - 1) < 0.05
    assert model_cost(CNN3D(CNN3DConfig(widths=(24, 64, 96, 288))), one)["flops"] > 3 * mine["flops"]   # it counts
    with pytest.raises(ValueError, match="clip: expected shape"):
        net(torch.randn(3, 1, 6, 64, 64))


# --- training by name -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["ststnet", "cnn3d"])
def test_train_main_writes_a_report_and_a_checkpoint_mol_eval_reads(arch, tmp_path, capsys):
    summary = train_main(arch=arch, subjects=3, videos_per_class=1, folds=1, iterations=3, quiet=True,
                         runs=str(tmp_path), threads=1, batch_size=4)
    printed = capsys.readouterr().out
    assert "flow and landmarks: not predicted by this model" in printed
    out = tmp_path / f"synthetic-{arch}-cpu"
    for name in ("config.json", "summary.json", "folds.csv", "predictions.csv", "confusion_video.png", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["model"]["arch"] == arch
    assert summary["epe"] is None and summary["nme_outer_corners"] is None and summary["fixed/clip"]["n"] > 0
    subject = summary["folds"][0]
    fold_dir = out / "folds" / subject
    model, spec, _ = load_checkpoint_model(fold_dir, "cpu")
    assert type(model).__name__ == {"ststnet": "STSTNet", "cnn3d": "CNN3D"}[arch] and not model.training
    test_ds = SyntheticMicroExpressions(subjects=3, videos_per_class=1, size=64).subset([subject])
    fold = json.loads((fold_dir / "fold.json").read_text())
    probs = predict(model, test_ds, "cpu")["probs"]
    np.testing.assert_allclose(probs, np.array(fold["predictions"]["fixed"]["probs"]), atol=1e-5)   # the final model
    r = eval_main(str(fold_dir), subjects=[subject], data_subjects=3, videos_per_class=1, device="cpu")
    acc = np.mean(np.argmax(probs, 1) == np.array(fold["predictions"]["fixed"]["labels"]))
    assert r["clips"] == len(test_ds) and r["epe"] is None and abs(r["clip"]["acc"] - acc) < 1e-9


def test_unknown_arch_lists_the_baselines(tmp_path):
    with pytest.raises(ValueError) as e:
        train_main(arch="huge", runs=str(tmp_path), quiet=True)
    assert str(e.value).startswith("arch: expected one of") and "\n" not in str(e.value)
    assert all(name in str(e.value) for name in ("small", "tiny", "ststnet", "cnn3d"))
    with pytest.raises(ValueError) as e:
        build_model({"arch": "huge", "config": {}})
    assert str(e.value).startswith("model: unknown arch 'huge'") and "ststnet" in str(e.value) and "cnn3d" in str(e.value)
    assert set(BASELINE_ARCHS) == {"ststnet", "cnn3d"}


def test_the_cli_imports_a_baseline_only_when_it_is_named():
    code = ("import sys, json, mol_edu.cli as cli\n"
            "before = [m for m in ('mol_edu.ststnet', 'mol_edu.cnn3d') if m in sys.modules]\n"
            "spec = json.loads(json.dumps(cli.model_spec('ststnet', 3)))\n"
            "after_one = 'mol_edu.ststnet' in sys.modules, 'mol_edu.cnn3d' in sys.modules\n"
            "net = cli.build_model(json.loads(json.dumps(cli.model_spec('cnn3d', 3))))\n"
            "print(json.dumps([before, after_one, type(cli.build_model(spec)).__name__, type(net).__name__]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [[], [True, False], "STSTNet", "CNN3D"]


def test_oracle_apex_trainer_feeds_the_oracle(corpus):
    from mol_edu.loso import LOSOConfig, run_loso
    cfg = TrainConfig.preset("cpu", iterations=2, batch_size=4)
    res = run_loso(corpus, lambda: quick_ststnet(apex="oracle"), cfg, LOSOConfig(folds=1), device="cpu",
                   trainer_cls=OracleApexTrainer, loss_fn=classification_terms)
    assert len(res.folds) == 1 and len(res.folds[0]["history"]) == 2 and res.folds[0]["epe"] is None
    with pytest.raises(ValueError, match="feed it ststnet_inputs"):   # the plain Trainer feeds a clip alone
        run_loso(corpus, lambda: quick_ststnet(apex="oracle"), cfg, LOSOConfig(folds=1), device="cpu",
                 loss_fn=classification_terms)


@pytest.mark.parametrize("make", [
    lambda: quick_ststnet(classes=2, flow_size=28),
    lambda: CNN3D(CNN3DConfig(classes=2, widths=(4, 8, 8, 16))),
], ids=["ststnet", "cnn3d"])
def test_a_handful_of_clips_is_overfitted(corpus, make):
    clips = [corpus[i] for i in range(8)]
    for k, s in enumerate(clips): s["label"] = torch.tensor(k % 2)   # two classes, four clips each, to memorise
    cfg = TrainConfig(lr=1e-2, weight_decay=0.0, batch_size=8, iterations=40, seed=0)
    trainer = Trainer(make(), clips, cfg, device="cpu", loss_fn=classification_terms).fit()
    losses = [h["loss"] for h in trainer.history]
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_predict_video_and_its_picture_work_for_a_model_without_flow_or_landmark_heads(tmp_path):
    import cv2
    from mol_edu.alignment import face_video
    from mol_edu.cli import build_model, model_spec, plot_prediction, predict_video
    for i, f in enumerate(face_video(n=16)): cv2.imwrite(str(tmp_path / f"img{i + 1}.jpg"), f)
    spec = model_spec("cnn3d", 5)
    r = predict_video(build_model(spec), spec, list("abcde"), tmp_path, "cpu")
    assert r["flow"] is None and r["landmarks"] is None and abs(sum(r["probabilities"].values()) - 1) < 1e-5
    plot_prediction(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_mol_train_feeds_ststnet_the_oracle_apex_when_its_config_asks(tmp_path):
    from mol_edu.cli import eval_main, train_main
    s = train_main(arch="ststnet", model_config='{"apex": "oracle"}', subjects=3, videos_per_class=1, folds=1,
                   iterations=2, batch_size=4, quiet=True, runs=str(tmp_path), name="o")
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert cfg["model"]["config"]["apex"] == "oracle" and s["n_folds"] == 1
    r = eval_main(tmp_path / "o" / "folds" / s["folds"][0], subjects=s["folds"], data_subjects=3, videos_per_class=1)
    assert r["clips"] > 0 and r["epe"] is None


@pytest.mark.parametrize("value, message", [("{nope", "model_config: not valid JSON"),
                                            ("[1, 2]", "model_config: expected a JSON object")])
def test_a_bad_model_config_is_one_line(tmp_path, value, message):
    from mol_edu.cli import train_main
    with pytest.raises(ValueError, match=message):
        train_main(arch="cnn3d", model_config=value, subjects=3, videos_per_class=1, folds=1, iterations=1,
                   quiet=True, runs=str(tmp_path))
