"""Conditional GANs (cgan, acgan): label plumbing, the projection discriminator and the AC-GAN
losses by hand, net shapes on labelled points and digits, and train -> sample -> eval end to end."""
from __future__ import annotations

import functools
import math

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gen_runner.errors import UserError
from gen_runner.gans.acgan import ACGANModule
from gen_runner.gans.conditional import ConditionalGANModule
from gen_runner.gans.module import GANBatch
from gen_runner.gans.objectives import StandardGAN
from gen_runner.nets.conditional import ProjectionDiscriminator
from gen_runner.nets.dcgan import DCGANDiscriminator
from gen_runner.nets.mlp import MLPDiscriminator
from gen_runner.checkpoints import load_checkpoint
from gen_runner.instantiate import build_datamodule, build_model
from gen_runner.tasks.sample import sample
from gen_runner.tasks.train import train
from helpers import FAST, read_metrics, run_cli, run_directory

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


# -- label plumbing -------------------------------------------------------------------------------
class SpyGenerator(nn.Module):
    def __init__(self, latent_dim, data_shape, num_classes):
        super().__init__()
        self.linear, self.seen = nn.Linear(latent_dim, 2), []

    def forward(self, z, y):
        self.seen.append(y.clone())
        return self.linear(z)


class SpyDiscriminator(nn.Module):
    def __init__(self, data_shape, num_classes):
        super().__init__()
        self.linear, self.seen = nn.Linear(2, 1), []

    def forward(self, x, y):
        self.seen.append((x.detach().clone(), y.clone()))
        return self.linear(x).squeeze(1)


def test_a_labelled_batch_reaches_g_and_d_with_its_labels():
    gan = ConditionalGANModule(SpyGenerator, SpyDiscriminator, StandardGAN(), {"shape": [2], "num_classes": 3},
                               functools.partial(torch.optim.SGD, lr=0.1), latent_dim=2)
    x, y = torch.randn(6, 2), torch.tensor([2, 0, 1, 1, 2, 0])
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(gan, DataLoader(TensorDataset(x, y), batch_size=6))
    assert [s.tolist() for s in gan.generator.seen] == [y.tolist()]  # the fakes are made for the batch's labels
    seen = gan.discriminator.seen  # D's step on real and fake, then G's step on fake
    assert len(seen) == 3 and torch.equal(seen[0][0], x)
    assert all(labels.tolist() == y.tolist() for _, labels in seen)


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_unlabelled_data_is_a_one_line_error(make_config, tmp_path, model):
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32))
    cfg = make_config("train", f"model={model}", "data=tensor_file", f"data.path={tmp_path / 'points.npy'}",
                      "data.batch_size=20", *FAST)
    with pytest.raises(UserError, match="need labelled data: data=digits, mnist"):
        train(cfg)


# -- the nets and losses by hand ----------------------------------------------------------------------
def _set(layer: nn.Linear, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def test_projection_discriminator_by_hand():
    """phi(x) = relu(W x), psi(h) = w.h + 0.5, V = [[1, 1, 1], [0, -1, 2]]."""
    net = MLPDiscriminator([2], hidden=[3], activation="relu")
    _set(net.body[0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 0.0])
    _set(net.head, [[1.0, 2.0, 3.0]], [0.5])
    d = ProjectionDiscriminator(net, num_classes=2)
    with torch.no_grad():
        d.embed.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, -1.0, 2.0]]))
    x, y = torch.tensor([[1.0, -2.0], [0.5, 1.0]]), torch.tensor([1, 0])
    # phi = [1, 0, 0] and [0.5, 1, 1.5]; psi = 1.5 and 7.5; <V_y, phi> = 0 and 3
    torch.testing.assert_close(d(x, y), torch.tensor([1.5, 10.5]))


def test_projection_splits_dcgan_d_at_its_output_layer():
    """With V = 0 the projection discriminator is the unconditional DCGAN discriminator."""
    torch.manual_seed(0)
    net = DCGANDiscriminator([1, 8, 8], base_channels=4).eval()
    x = torch.randn(3, 1, 8, 8)
    expected = net(x)
    d = ProjectionDiscriminator(net, num_classes=10).eval()
    assert d.embed.weight.shape == (10, 8 * 2 * 2)  # phi: the 8-channel 2 x 2 map the last convolution reads
    with torch.no_grad():
        d.embed.weight.zero_()
    torch.testing.assert_close(d(x, torch.tensor([0, 4, 9])), expected)


class SourceThenClasses(nn.Module):
    """A stand-in D reading its logits off the input: x[:, 0] the source logit, x[:, 1:] the classes'."""

    def __init__(self, data_shape, num_classes):
        super().__init__()

    def forward(self, x):
        return x[:, 0], x[:, 1:]


@pytest.mark.parametrize("generator_loss, g_loss", [("non_saturating", (math.log(4 / 3) + LN4) / 2),
                                                    ("minimax", -(LN4 + math.log(4 / 3)) / 2)])
def test_acgan_losses_by_hand(generator_loss, g_loss):
    gan = ACGANModule(SpyGenerator, SourceThenClasses, StandardGAN(generator_loss), {"shape": [3], "num_classes": 2},
                      latent_dim=2, class_weight=0.5)
    real = torch.tensor([[0.0, LN3, 0.0], [0.0, LN3, 0.0]])  # P(C = 0) = 3/4 for both: right, then wrong
    fake = torch.tensor([[LN3, 0.0, LN3], [-LN3, 0.0, 0.0]])  # P(S = real) = 3/4, 1/4; P(C = c) = 1/4, 1/2
    batch = GANBatch(real, fake, labels=torch.tensor([0, 1]))
    d_losses = gan.discriminator_loss(batch)
    d = d_losses.terms
    # -L_S = -log(1/2) twice, -log(1/4) and -log(3/4)
    assert d["train/d_loss"].item() == pytest.approx(LN2 + (LN4 + math.log(4 / 3)) / 2)
    # -L_C: real -log(3/4), -log(1/4); fake -log(1/4), -log(1/2); weight 0.5
    assert d["train/d_class_loss"].item() == pytest.approx(0.5 * ((math.log(4 / 3) + LN4) / 2 + (LN4 + LN2) / 2))
    assert d_losses.stats["train/d_real_acc"].item() == 0.5
    g = gan.generator_loss(batch).terms
    assert g["train/g_loss"].item() == pytest.approx(g_loss)  # -log(3/4), -log(1/4) or log(1/4), log(3/4)
    assert g["train/g_class_loss"].item() == pytest.approx(0.5 * (LN4 + LN2) / 2)
    with pytest.raises(ValueError, match="model.pack=2"):
        ACGANModule(SpyGenerator, SourceThenClasses, StandardGAN(), {"shape": [3], "num_classes": 2}, pack=2)


# -- nets from the configs, on labelled points and digits ---------------------------------------------------
@pytest.fixture(scope="module")
def labelled_points(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "points.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(100, 2)).astype(np.float32), y=rng.integers(0, 3, 100))
    return path


SMALL = ["model.latent_dim=4", "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]",
         "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4"]
NETS = [("cgan", "points", []), ("cgan", "points", ["model.discriminator.conditioning=projection"]),
        ("cgan", "digits", []), ("cgan", "digits", ["model.generator.embed_dim=5", "model.discriminator.embed_dim=3"]),
        ("cgan", "digits", ["model.generator.kind=conv", "model.discriminator.kind=conv"]),
        ("cgan", "digits", ["model.generator.kind=conv", "model.discriminator.kind=conv",
                            "model.discriminator.conditioning=concat", "model.discriminator.embed_dim=3"]),
        ("acgan", "points", []), ("acgan", "digits", [])]


@pytest.mark.parametrize("model, data, extra", NETS, ids=[f"{m}-{d}-{'-'.join(e)}" for m, d, e in NETS])
def test_conditional_nets_shapes(make_config, labelled_points, model, data, extra):
    data_args = ["data=digits"] if data == "digits" else ["data=tensor_file", f"data.path={labelled_points}"]
    cfg = make_config("train", f"model={model}", *data_args, *SMALL, *extra)
    dm = build_datamodule(cfg.data, 0)
    gan = build_model(cfg.model, dm.describe(), cfg.optimizer)
    x, y = next(iter(dm.loader("train")))
    k, shape = (10, (1, 8, 8)) if data == "digits" else (3, (2,))
    assert gan.num_classes == k
    assert gan.generate(gan.draw_noise(len(y)), y).shape == (len(y), *shape)
    logits = gan.discriminator(gan.preprocess(x)) if model == "acgan" else gan.critic(gan.preprocess(x), y)
    if model == "acgan":
        assert logits[0].shape == (len(y),) and logits[1].shape == (len(y), k)
    else:
        assert logits.shape == (len(y),)


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_any_objective_and_regularizer(make_config, labelled_points, model):
    """The Wasserstein critic with WGAN-GP's penalty, whose interpolates D judges with the batch's labels."""
    cfg = make_config("train", f"model={model}", "data=tensor_file", f"data.path={labelled_points}",
                      "data.batch_size=20", *SMALL, "model/objective=wasserstein",
                      "model.regularizers=[{_target_:gen_runner.gans.regularizers.GradientPenalty}]",
                      "trainer.max_steps=2", *FAST)
    metrics = train(cfg)
    assert "train/d_GradientPenalty" in metrics and all(math.isfinite(v) for v in metrics.values())


def test_sampling_for_labels_and_per_class():
    gan = ConditionalGANModule(SpyGenerator, SpyDiscriminator, StandardGAN(), {"shape": [2], "num_classes": 3},
                               latent_dim=2)
    gan.generator.forward = lambda z, y: y[:, None].float().expand(-1, 2)  # a sample shows its label
    seeded = torch.Generator().manual_seed(0)
    assert gan.sample(3, labels=[2, 2, 0], batch_size=2)[:, 0].tolist() == [2, 2, 0]
    assert gan.fixed_samples(7)[:, 0].tolist() == [0, 0, 1, 1, 2, 2]  # n // K per class, class by class
    drawn = gan.sample(500, generator=seeded)[:, 0]
    assert set(drawn.tolist()) == {0, 1, 2}
    with pytest.raises(UserError, match=r"labels=\[3\]: give class indices in 0..2"):
        gan.sample(1, labels=[3])


# -- end to end ----------------------------------------------------------------------------------------
CLI_SMALL = ["data=digits", "data.batch_size=32", "trainer.max_steps=3", "model.latent_dim=8",
             "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4"]
CLI_MODELS = {"cgan": ["model.generator.kind=conv", "model.discriminator.kind=conv"], "acgan": []}


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    """A few steps of the digits classifier: enough to score samples, not to score them well."""
    cwd = tmp_path_factory.mktemp("classifier")
    out = run_directory(run_cli("train", "model=classifier", "data=digits", "trainer.max_steps=5",
                                "callbacks=minimal", cwd=cwd), cwd)
    return out / "checkpoints/last.ckpt"


def _png_tiles(path, side=8) -> tuple[int, int]:
    """(columns, rows) of an image grid of side x side images (2 pixels padding, enlarged to 32 pixels)."""
    width, height = Image.open(path).size
    tile = (side + 2) * (32 // side)
    return (width - 8) // tile, (height - 8) // tile


@pytest.mark.parametrize("model", CLI_MODELS)
def test_train_sample_and_eval_through_the_cli(tmp_path, classifier_ckpt, model):
    run = run_directory(run_cli("train", f"model={model}", *CLI_SMALL, *CLI_MODELS[model], cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert {"train/d_loss", "train/g_loss"} <= metrics.keys()
    if model == "acgan":
        assert {"train/d_class_loss", "train/g_class_loss", "train/d_real_acc"} <= metrics.keys()
    assert _png_tiles(run / "samples/train_final.png") == (6, 10)  # 64 samples: 6 of each class, a row each
    ckpt = run / "checkpoints/last.ckpt"

    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "labels=[3,3,7]", cwd=tmp_path), tmp_path)
    assert np.load(out / "samples/samples.npy").shape == (3, 1, 8, 8)
    assert np.load(out / "samples/labels.npy").tolist() == [3, 3, 7]
    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "per_class=2", cwd=tmp_path), tmp_path)
    assert np.load(out / "samples/samples.npy").shape == (20, 1, 8, 8)
    assert np.load(out / "samples/labels.npy").tolist() == [c for c in range(10) for _ in range(2)]
    assert _png_tiles(out / "samples/samples.png") == (2, 10)

    out = run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.features=classifier",
                                f"eval.features_ckpt={classifier_ckpt}", "eval.num_samples=200",
                                "eval.metrics=[fid]", f"eval.cache_dir={tmp_path / 'cache'}", cwd=tmp_path), tmp_path)
    scores = read_metrics(out)
    assert 0 <= scores["class_accuracy"] <= 1 and scores["fid"] > 0
    assert "intended label" in scores["protocol"]["class_accuracy"]


def test_unconditional_checkpoints_refuse_labels(make_config):
    cfg = make_config("train", "model=dcgan", "data=digits", "data.batch_size=32", "trainer.max_steps=1",
                      "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4", *FAST)
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    for option in ("labels=[1]", "per_class=2"):
        with pytest.raises(UserError, match=r"holds an unconditional model \(model=dcgan\)"):
            sample(make_config("sample", f"ckpt_path={ckpt}", option))


def test_labels_from_image_folder_subfolders_reach_a_conditional_gan(make_config, tmp_path):
    """Class subfolders become labels (sorted names); each batch's labels stay with their images."""
    for label, (name, shade) in enumerate([("cats", 20), ("dogs", 230)]):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((8, 8), shade + i, np.uint8)).save(tmp_path / "pets" / name / f"{i}.png")
    cfg = make_config("train", "model=cgan", "data=image_folder", f"data.path={tmp_path / 'pets'}", "data.size=8",
                      "data.channels=1", "data.batch_size=8", *SMALL, "trainer.max_steps=2", *FAST)
    dm = build_datamodule(cfg.data, 0)
    assert dm.num_classes == 2
    x, y = next(iter(dm.loader("train", shuffle=True)))
    assert ((x.float().flatten(1).mean(1) > 128).long() == y).all()  # dogs (label 1) are the light images
    metrics = train(cfg)
    assert all(math.isfinite(v) for v in metrics.values())
    assert load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")["gen_runner"]["data"]["num_classes"] == 2
