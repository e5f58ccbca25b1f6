"""Tests of mol_edu.train and mol_edu.checkpoint: presets, sampler, trainer, AMP paths, checkpoints and exact resume."""
import json
import math

import pytest
import torch

from mol_edu.core import seed_everything
from mol_edu.checkpoint import PeriodicCheckpoint, load_weights, read_checkpoint_meta
from mol_edu.core import atomic_write
from mol_edu.loss import LossWeights
from mol_edu.train import IterationSampler, StopAfter, TinyJointNet, ToyMotionClips, TrainConfig, Trainer

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def toy():
    return ToyMotionClips(n=24, seed=0)


def _model(seed=7, dropout=0.3):
    seed_everything(seed)
    return TinyJointNet(dropout=dropout)


def test_released_preset_is_the_release_recipe():
    c = TrainConfig.preset("released")
    assert (c.lr, c.weight_decay, c.batch_size, c.iterations, c.seed, c.schedule) == (1e-4, 1e-3, 32, 1000, 2024, "constant")
    assert c.loss_weights == LossWeights(mer=1.0, flow=10.0, ldm=0.1)
    with pytest.warns(DeprecationWarning, match="now called 'released'"):
        assert TrainConfig.preset("paper") == c
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.preset("nope")


def test_trainer_refuses_a_non_finite_loss(toy):
    bad = ToyMotionClips(n=8, seed=0); bad.samples[2]["clip"][0, 3, 4, 4] = float("inf")
    tr = Trainer(_model(), bad, TrainConfig(batch_size=8, iterations=5), device="cpu")
    before = [p.clone() for p in tr.model.parameters()]
    with pytest.raises(ValueError, match="loss: not finite at iteration 1"):
        tr.fit()
    assert all(torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))   # no step was taken


def test_sampler_resume_and_ranks():
    full = list(IterationSampler(11, 4, seed=3, stop=9))
    assert list(IterationSampler(11, 4, seed=3, start=4, stop=9)) == full[4:]
    full12 = list(IterationSampler(12, 4, seed=3, stop=9))   # a multiple of world: DistributedSampler does not pad
    r = [list(IterationSampler(12, 4, seed=3, stop=9, rank=k, world=2)) for k in (0, 1)]
    assert [sorted(a + b) for a, b in zip(*r)] == [sorted(f) for f in full12]
    assert sorted(sum(full[:2], []) + full[2][:3]) == list(range(11))


def test_trainer_learns(toy):
    cfg = TrainConfig(lr=1e-2, batch_size=8, iterations=40, seed=0)
    tr = Trainer(_model(dropout=0.0), toy, cfg, device="cpu").fit()
    assert tr.iteration == 40 and len(tr.history) == 40
    assert tr.history[-1]["mer"] < tr.history[0]["mer"] / 2


def test_resume_continues_the_same_trajectory(toy, tmp_path):
    cfg = TrainConfig(lr=3e-3, batch_size=6, iterations=10, seed=7, schedule="cosine", grad_clip=1.0)
    whole = Trainer(_model(), toy, cfg, device="cpu").fit()
    Trainer(_model(), toy, cfg, device="cpu", callbacks=[StopAfter(4), PeriodicCheckpoint(tmp_path, every=2)]).fit()
    meta = read_checkpoint_meta(tmp_path)
    assert meta["iteration"] == 4 and meta["train"]["iterations"] == 10
    resumed = Trainer(_model(seed=99), toy, cfg, device="cpu").load_checkpoint(tmp_path).fit()
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_without_rng_state_would_drift(toy, tmp_path):
    "The resume test can fail: a checkpoint reloaded without its RNG state gives different dropout draws."
    cfg = TrainConfig(lr=3e-3, batch_size=6, iterations=8, seed=7)
    whole = Trainer(_model(), toy, cfg, device="cpu").fit()
    Trainer(_model(), toy, cfg, device="cpu", callbacks=[StopAfter(4), PeriodicCheckpoint(tmp_path, every=4)]).fit()
    t = Trainer(_model(), toy, cfg, device="cpu").load_checkpoint(tmp_path)
    torch.manual_seed(12345)  # clobber the restored RNG
    t.fit()
    assert [h["loss"] for h in t.history][4:] != [h["loss"] for h in whole.history][4:]


def test_checkpoint_is_safe_and_complete(toy, tmp_path):
    tr = Trainer(_model(), toy, TrainConfig(batch_size=4, iterations=2), device="cpu", model_config={"name": "tiny"}).fit()
    tr.save_checkpoint(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json", "model-0000002.safetensors",
                                                           "state-0000002.safetensors"]
    m = load_weights(TinyJointNet(dropout=0.3), tmp_path)
    assert torch.equal(m.classify.weight, tr.model.classify.weight)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["model"] == {"name": "tiny"}
    (tmp_path / "state-0000002.safetensors").unlink()
    with pytest.raises(ValueError, match="state-0000002.safetensors is missing"):
        Trainer(_model(), toy, TrainConfig(), device="cpu").load_checkpoint(tmp_path)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "x.txt"; p.write_text("old")
    def boom(tmp):
        open(tmp, "w").write("half"); raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == "old" and [q.name for q in tmp_path.iterdir()] == ["x.txt"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_paths_run(toy, precision):
    tr = Trainer(_model(), toy, TrainConfig(lr=3e-3, batch_size=6, iterations=3, precision=precision, grad_clip=1.0),
                 device="cpu").fit()
    assert all(math.isfinite(h["loss"]) for h in tr.history)
    assert tr.scaler.is_enabled() == (precision == "fp16")


def test_predict_outputs(toy):
    tr = Trainer(_model(), toy, TrainConfig(batch_size=4, iterations=1), device="cpu").fit()
    r = tr.predict(toy, batch_size=5)
    assert r["probs"].shape == (24, 5) and len(r["videos"]) == 24
    assert {"epe", "nme_outer_corners", "nme_eye_centres"} <= set(r)
