"""The generator EMA (gen_runner/gans/ema.py): the update rule against hand computations (warm-up and
the half-life form), eval/sample reading the EMA weights (or the raw ones), old checkpoints, an exact
resume with the EMA on, and GAN options training with it through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import FAST, read_metrics, run_cli
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.errors import UserError
from gen_runner.instantiate import build_model
from gen_runner.gans.ema import EMASchedule, GeneratorEMA, ema_schedule
from gen_runner.tasks.evaluate import evaluate
from gen_runner.tasks.train import train

RING8 = ["model=gan", "data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100",
         "data.batch_size=50", "model.generator.mlp.hidden=[16]", "model.discriminator.mlp.hidden=[16]",
         "model.discriminator.mlp.dropout=0", "logger=csv", *FAST]


def test_schedule_by_hand():
    fixed = EMASchedule(decay=0.999, warmup=False)
    assert fixed.beta(1, 64) == fixed.beta(10**6, 64) == 0.999
    warm = EMASchedule(decay=0.999)
    assert warm.beta(1, 64) == pytest.approx(2 / 11) and warm.beta(100, 64) == pytest.approx(101 / 110)
    assert warm.beta(10**5, 64) == 0.999  # the ramp passes 0.999 at t ~ 8,990
    # StyleGAN: a half-life of 10k images; at batch 32, 10,000 / 32 steps halve the old weights' share.
    style = EMASchedule(half_life_kimg=10, warmup=False)
    assert style.beta(1, 32) == pytest.approx(0.5 ** (32 / 10_000))
    assert style.beta(1, 32) ** (10_000 / 32) == pytest.approx(0.5)
    assert style.beta(1, 4) > style.beta(1, 32)  # per image, not per step: smaller batches decay less per step
    assert ema_schedule(None, None, True) is None
    for bad in [(0.999, 10, True), (1.0, None, True), (0.0, None, True), (None, 0, True), ("abc", None, True)]:
        with pytest.raises(UserError, match="model.ema_"):
            ema_schedule(*bad)


def test_update_rule_by_hand():
    g = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = GeneratorEMA(g, EMASchedule(decay=0.9))
    assert not any(p.requires_grad for p in ema.module.parameters())
    weights = []
    for step in range(4):
        with torch.no_grad():
            g[0].weight.add_(float(step + 1))
        g(torch.randn(8, 2))  # moves BatchNorm's running statistics
        ema.update(g, batch_size=8)
        weights.append(g[0].weight.detach().clone())
    expected = weights[0]  # the first update copies G
    for t, w in enumerate(weights[1:], start=1):
        beta = min(0.9, (1 + t) / (10 + t))
        expected = beta * expected + (1 - beta) * w
    torch.testing.assert_close(ema.module[0].weight, expected)
    assert int(ema.n_averaged) == 4
    torch.testing.assert_close(ema.module[1].running_mean, g[1].running_mean, rtol=0, atol=0)  # buffers copied


def _train(make_config, *overrides, base=RING8):
    cfg = make_config("train", *base, *overrides)
    train(cfg)
    return f"{cfg.paths.output_dir}/checkpoints/last.ckpt"


def test_eval_and_sample_use_the_ema(make_config):
    path = _train(make_config, "model.ema_decay=0.9", "model.n_critic=2", "trainer.max_steps=10")
    ckpt = load_checkpoint(path)
    state = ckpt["state_dict"]
    assert int(state["generator_ema.n_averaged"]) == 5  # one update per generator step (n_critic=2)
    assert all(type(v) is torch.Tensor for v in state.values())  # plain tensors: weights_only=True reads them
    ema = {k.removeprefix("generator_ema.module."): v for k, v in state.items() if k.startswith("generator_ema.module.")}
    assert ema.keys() == {k.removeprefix("generator.") for k in state if k.startswith("generator.")}

    model = model_from_checkpoint(ckpt)
    assert model.weights == "ema" and model.generator_ema is None
    torch.testing.assert_close(model.generator.state_dict(), ema, rtol=0, atol=0)
    raw = model_from_checkpoint(ckpt, "raw")
    assert raw.weights == "raw"
    noise = torch.randn(5, raw.latent_dim)
    assert not torch.allclose(model.generate(noise), raw.generate(noise))
    with pytest.raises(UserError, match="eval.weights=best: pass eval.weights=ema"):
        evaluate(make_config("eval", f"ckpt_path={path}", "eval.weights=best"))

    # While training (the EMA kept beside G): progress grids come from the EMA, and G gets its raw weights back.
    training = build_model(ckpt["gen_runner"]["config"]["model"], ckpt["gen_runner"]["data"])
    training.load_state_dict(state)
    before = {k: v.clone() for k, v in training.generator.state_dict().items()}
    torch.testing.assert_close(training.fixed_samples(6), model.fixed_samples(6), rtol=0, atol=0)
    torch.testing.assert_close(training.generator.state_dict(), before, rtol=0, atol=0)


def test_eval_scores_the_ema_and_records_it(make_config):
    """FID under (barely trained) classifier features: the EMA generator's differs from the raw one's."""
    classifier = make_config("train", "experiment=classifier_digits", "trainer.max_steps=5", *FAST)
    train(classifier)
    path = _train(make_config, "model=gan", "data=digits", "data.batch_size=16", "model.ema_decay=0.9",
                  "model.generator.mlp.hidden=[16]", "model.discriminator.mlp.hidden=[16]", "trainer.max_steps=6",
                  "optimizer.lr=0.01", "logger=csv", *FAST, base=[])
    found = {}
    for weights in ("ema", "raw"):
        cfg = make_config("eval", f"ckpt_path={path}", f"eval.weights={weights}", "logger=csv",
                          "eval.features=classifier", f"eval.features_ckpt={classifier.paths.output_dir}/checkpoints/last.ckpt",
                          "eval.metrics=[fid]", "eval.num_samples=200", "eval.num_real=200", "eval.split=val")
        found[weights] = evaluate(cfg)["fid"]
        assert read_metrics(Path(cfg.paths.output_dir))["protocol"]["weights"] == weights
    assert found["ema"] != pytest.approx(found["raw"], rel=1e-3)


def test_a_checkpoint_without_ema_evals_as_before(make_config):
    path = _train(make_config, "trainer.max_steps=4")
    assert not any(k.startswith("generator_ema") for k in load_checkpoint(path)["state_dict"])
    found = {}
    for weights in ("ema", "raw"):
        cfg = make_config("eval", f"ckpt_path={path}", f"eval.weights={weights}", "logger=csv", "eval.num_samples=500")
        found[weights] = evaluate(cfg)
        assert read_metrics(Path(cfg.paths.output_dir))["protocol"]["weights"] == "raw"
    assert found["ema"] == found["raw"]


def test_resume_continues_raw_and_ema_exactly(make_config):
    common = ["model.ema_decay=0.9", "model.n_critic=2", "seed=3"]
    straight = load_checkpoint(_train(make_config, *common, "trainer.max_steps=10"))
    first = _train(make_config, *common, "trainer.max_steps=5")  # mid-way between two generator steps
    resumed = load_checkpoint(_train(make_config, *common, "trainer.max_steps=10", f"ckpt_path={first}"))
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert int(resumed["state_dict"]["generator_ema.n_averaged"]) == 5


def test_resume_switching_the_ema_on(make_config):
    first = _train(make_config, "trainer.max_steps=2")
    resumed = load_checkpoint(_train(make_config, "trainer.max_steps=4", "model.ema_decay=0.9", f"ckpt_path={first}"))
    assert int(resumed["state_dict"]["generator_ema.n_averaged"]) == 2  # started at the resume


@pytest.mark.parametrize("model, small", [
    ("dcgan", ["model.generator.conv.base_channels=8", "model.discriminator.conv.base_channels=8"]),
    ("cgan", ["model.generator.mlp.hidden=[16]", "model.discriminator.mlp.hidden=[16]"]),
])
def test_gan_options_train_and_sample_with_ema(tmp_path, model, small):
    """Through the CLI, sample grids during training included; `sample weights=raw` draws from the raw G."""
    run_cli("train", f"model={model}", *small, "data=digits", "data.batch_size=8", "trainer.max_steps=3",
            "model.ema_half_life_kimg=0.01", "logger=csv", "callbacks.samples.every_n_steps=2",
            f"paths.root={tmp_path}", cwd=tmp_path)
    (ckpt,) = tmp_path.glob("train/*/*/checkpoints/last.ckpt")
    assert int(load_checkpoint(ckpt)["state_dict"]["generator_ema.n_averaged"]) == 3
    assert json.loads(next(tmp_path.glob("train/*/*/metrics.json")).read_text())["protocol"]["steps"] == 3
    if model == "dcgan":
        run_cli("sample", f"ckpt_path={ckpt}", "weights=raw", "num_samples=4", f"paths.root={tmp_path}", cwd=tmp_path)
        (drawn,) = tmp_path.glob("sample/*/*/samples/samples.pt")
        raw = model_from_checkpoint(load_checkpoint(ckpt), "raw")
        torch.testing.assert_close(torch.load(drawn), raw.sample(4, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("model, extra", [("began", ["model.discriminator.vector.hidden=[16]"]),
                                          ("ssgan", ["data.labels_per_class=5"])])
def test_began_and_ssgan_train_with_an_ema(make_config, model, extra):
    data = "ring8" if model == "began" else "digits"
    cfg = make_config("train", f"model={model}", f"data={data}", *extra, "model.ema_decay=0.9", "trainer.max_steps=2",
                      "data.batch_size=10", "logger=csv", *FAST)
    train(cfg)
    (ckpt,) = Path(cfg.paths.output_dir).glob("checkpoints/last.ckpt")
    assert int(load_checkpoint(ckpt)["state_dict"]["generator_ema.n_averaged"]) == 2
    assert model_from_checkpoint(load_checkpoint(ckpt)).weights == "ema"
