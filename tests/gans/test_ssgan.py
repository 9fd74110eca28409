"""The semi-supervised GAN (model=ssgan): the K + 1-class losses and feature matching by hand, the
noisy weight-normalised nets, train -> eval (accuracy) -> sample through the CLI, and (slow) the
gain over the same discriminator trained on the same 100 labels alone."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from gen_runner.errors import UserError
from gen_runner.gans.module import GANBatch
from gen_runner.gans.ssgan import SSGANModule, feature_matching, real_logit, unsupervised_loss
from gen_runner.nets.semi_supervised import NoisyMLPClassifier, ssgan_generator
from gen_runner.tasks.evaluate import evaluate
from gen_runner.tasks.train import train
from helpers import FAST, read_metrics, run_cli, run_directory

LN2, LN3 = math.log(2), math.log(3)


def test_the_generated_class_logit_is_fixed_at_zero():
    """D(x) = Z / (Z + 1): the softmax over [l_1..l_K, 0] gives the generated class 1 / (Z + 1)."""
    logits = torch.tensor([[0.0, 0.0], [LN2, LN3], [-1.0, 2.0]])
    z = logits.exp().sum(1)
    torch.testing.assert_close(torch.sigmoid(real_logit(logits)), z / (z + 1))  # 2/3, 5/6, ...
    with_fake = torch.softmax(torch.cat([logits, torch.zeros(3, 1)], 1), 1)
    torch.testing.assert_close(with_fake[:, -1], 1 - torch.sigmoid(real_logit(logits)))
    torch.testing.assert_close(with_fake[:, :2], torch.softmax(logits, 1) * (z / (z + 1))[:, None])


def test_unsupervised_loss_by_hand():
    real = torch.tensor([[0.0, LN2], [LN3, 0.0]])  # Z = 3 and 4: D = 3/4, 4/5
    fake = torch.tensor([[-LN2, -LN2], [0.0, -100.0]])  # Z = 1 and ~1: D = 1/2, 1/2
    expected = -(math.log(3 / 4) + math.log(4 / 5)) / 2 - (math.log(1 / 2) + math.log(1 / 2)) / 2
    assert unsupervised_loss(real, fake).item() == pytest.approx(expected, abs=1e-6)


def test_feature_matching_by_hand():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean [2, 3]
    fake = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]])  # mean [1, 0]
    assert feature_matching(real, fake).item() == pytest.approx((1 + 9) / 2)


class Identity(nn.Module):
    """A stand-in D reading its logits (and features) off the input."""

    def __init__(self, data_shape, num_classes):
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def features(self, x):
        return x, x

    def forward(self, x):
        return x


class Linear(nn.Module):
    def __init__(self, latent_dim, data_shape):
        super().__init__()
        self.linear = nn.Linear(latent_dim, data_shape[0])

    def forward(self, z):
        return self.linear(z)


DATA = {"shape": [2], "num_classes": 2, "labels_per_class": 1}


@pytest.mark.parametrize("generator_loss", ["feature_matching", "non_saturating"])
def test_module_losses_by_hand(generator_loss):
    gan = SSGANModule(Linear, Identity, DATA, latent_dim=2, unsupervised_weight=0.5, generator_loss=generator_loss)
    labelled = (torch.tensor([[LN3, 0.0], [0.0, LN3]]), torch.tensor([0, 0]))  # P(y = 0) = 3/4, 1/4
    real, fake = torch.tensor([[0.0, LN2], [LN3, 0.0]]), torch.tensor([[-LN2, -LN2], [0.0, -100.0]])
    batch = GANBatch(real, fake, extra=labelled)
    losses = gan.discriminator_loss(batch)
    d = losses.terms
    assert d["train/d_supervised"].item() == pytest.approx(-(math.log(3 / 4) + math.log(1 / 4)) / 2)
    # D(real) = 3/4, 4/5 (Z = 3, 4); D(fake) = 1/2, 1/2 (Z = 1, 1 + e^-100); weight 0.5
    unsupervised = -(math.log(3 / 4) + math.log(4 / 5)) / 2 + LN2
    assert d["train/d_unsupervised"].item() == pytest.approx(0.5 * unsupervised)
    assert losses.stats["train/labelled_acc"].item() == 0.5
    assert gan.critic(real).tolist() == pytest.approx([LN3, math.log(4)])
    assert losses.stats["train/d_loss"].item() == pytest.approx(sum(d.values()).item())
    g = gan.generator_loss(batch).terms["train/g_loss"].item()
    # feature matching (features = logits here): batch means [ln 3 / 2, ln 2 / 2] and [-ln 2 / 2, -(ln 2 + 100) / 2];
    # non-saturating: -log D(G(z)) = log 2 for both fakes
    expected = ((math.log(6) / 2) ** 2 + (LN2 + 50) ** 2) / 2 if generator_loss == "feature_matching" else LN2
    assert g == pytest.approx(expected, rel=1e-5)


def test_needs_few_labels_and_stays_unconditional():
    for data in ({"shape": [2], "num_classes": 2}, {"shape": [2]}):
        with pytest.raises(UserError, match="data.labels_per_class=N"):
            SSGANModule(Linear, Identity, data)
    gan = SSGANModule(Linear, Identity, DATA, latent_dim=2)
    assert gan.num_classes is None and gan.label_classes == 2 and gan.sample(3).shape == (3, 2)


def test_nets():
    torch.manual_seed(0)
    d = NoisyMLPClassifier([1, 8, 8], num_classes=10)
    assert [layer[0].parametrizations.weight.original0.shape for layer in d.layers] == [
        (1000, 1), (500, 1), (250, 1), (250, 1), (250, 1)]  # weight-normalised: one g per output unit
    x = torch.rand(5, 1, 8, 8)
    features, logits = d.features(x)
    assert features.shape == (5, 250) and logits.shape == (5, 10) and (features >= 0).all()
    d.eval()
    torch.testing.assert_close(d(x), d(x))  # the noise is off in eval mode
    d.train()
    assert not torch.equal(d(x), d(x))
    g = ssgan_generator(100, [1, 8, 8])
    out = g(torch.rand(7, 100))
    assert out.shape == (7, 1, 8, 8) and out.abs().max() <= 1
    assert isinstance(g.net[1], nn.BatchNorm1d) and isinstance(g.net[2], nn.Softplus)
    assert hasattr(g.net[-1], "parametrizations")


CLI_SMALL = ["model=ssgan", "data=digits", "data.labels_per_class=3", "data.batch_size=32", "trainer.max_steps=3",
             "trainer.val_check_interval=3", "model.latent_dim=8", "model.generator.hidden=[16]",
             "model.discriminator.hidden=[32,16]", "callbacks=minimal"]


def test_train_eval_and_sample_through_the_cli(tmp_path):
    run = run_directory(run_cli("train", *CLI_SMALL, cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert {"train/d_loss", "train/d_supervised", "train/d_unsupervised", "train/g_loss", "train/labelled_acc",
            "val/acc", "val/loss"} <= metrics.keys()
    assert metrics["train/d_loss"] == pytest.approx(metrics["train/d_supervised"] + metrics["train/d_unsupervised"],
                                                    rel=1e-5)
    ckpt = run / "checkpoints/last.ckpt"
    scores = read_metrics(run_directory(run_cli("eval", f"ckpt_path={ckpt}", cwd=tmp_path), tmp_path))
    assert 0 <= scores["accuracy"] <= 1 and scores["error"] == pytest.approx(1 - scores["accuracy"])
    assert scores["protocol"]["num_classified"] == 180 and "discriminator's argmax" in scores["protocol"]["accuracy"]
    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "num_samples=5", cwd=tmp_path), tmp_path)
    assert np.load(out / "samples/samples.npy").shape == (5, 1, 8, 8)


def test_fully_labelled_data_is_refused_with_a_hint(make_config):
    with pytest.raises(UserError, match="pass labelled data with data.labels_per_class=N"):
        train(make_config("train", *[a for a in CLI_SMALL if "labels_per_class" not in a]))


def test_the_classifier_baseline(make_config):
    """model=classifier on the same semi-supervised data: trained on the labelled examples, scored on the test split."""
    cfg = make_config("train", "model=classifier", "data=digits", "data.labels_per_class=3", "trainer.max_steps=2",
                      *FAST)
    train(cfg)
    scores = evaluate(make_config("eval", f"ckpt_path={cfg.paths.output_dir}/checkpoints/last.ckpt"))
    assert 0 <= scores["accuracy"] <= 1 and scores["error"] == pytest.approx(1 - scores["accuracy"])


# -- the point of it: the unlabelled data helps ---------------------------------------------------------
@pytest.mark.slow
def test_ssgan_beats_the_same_discriminator_trained_on_the_labels_alone(tmp_path):
    """digits, 100 labels (10 per class), the ssgan_digits preset for STEPS steps; the baseline is the
    same noisy weight-normalised D, optimizer, batches and steps with model.unsupervised_weight=0
    (G still trains, but nothing of it reaches D)."""
    accuracy = {}
    for name, extra in (("ssgan", []), ("labels_alone", ["model.unsupervised_weight=0"])):
        start = time.perf_counter()
        run = run_directory(run_cli("train", "experiment=ssgan_digits", f"trainer.max_steps={STEPS}",
                                    "callbacks=minimal", *extra, cwd=tmp_path), tmp_path)
        ckpt = run / "checkpoints/last.ckpt"
        accuracy[name] = read_metrics(run_directory(run_cli("eval", f"ckpt_path={ckpt}", cwd=tmp_path),
                                                    tmp_path))["accuracy"]
        print(f"{name}: test accuracy {accuracy[name]:.4f}, {time.perf_counter() - start:.0f} s")
    # seed 0 measured: 0.950 vs 0.900 (180 test digits); seeds 1 and 2 gain less (README, "Measured")
    assert accuracy["ssgan"] > accuracy["labels_alone"]


STEPS = 1000
