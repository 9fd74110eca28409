"""VEEGAN: its losses on linear nets checked by hand, where each loss's gradient goes, and training
end to end on points and on (flattened) images."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import FAST, reached
from gen_runner.gans.module import GANBatch
from gen_runner.gans.regularizers import R1
from gen_runner.gans.veegan import VEEGANModule
from gen_runner.nets.gan import JointDiscriminator
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.tasks.train import train


def linear(in_features, out_features, weight):
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()
    return layer


def make(**kwargs):
    """G(z) = z, F(x) = 2 x, D(z, x) = z_1 + x_2 (z, x in R^2)."""
    return VEEGANModule(
        generator=lambda latent_dim, data_shape: linear(2, 2, [[1.0, 0.0], [0.0, 1.0]]),
        discriminator=lambda data_shape, latent_dim: JointDiscriminator(
            nn.Flatten(), nn.Identity(), nn.Sequential(linear(4, 1, [[1.0, 0.0, 0.0, 1.0]]), nn.Flatten(0))),
        reconstructor=lambda data_shape, latent_dim: linear(2, 2, [[2.0, 0.0], [0.0, 2.0]]),
        data={"shape": [2]}, latent_dim=2, **kwargs)


Z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
REAL = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])


def softplus(t):
    return math.log1p(math.exp(t))


def test_losses_by_hand():
    gan = make(reconstructor_std=0.0)
    batch = GANBatch(REAL, gan.generator(Z), Z)
    g = gan.generator_loss(batch).terms
    assert g["train/g_loss"].item() == pytest.approx((1 + 2) / 2)  # D on (z, G(z)): z_1 + z_2
    assert g["train/reconstruction"].item() == pytest.approx((1 + 4) / 2)  # ||z - 2 z||^2 = ||z||^2
    # generator pairs are class 1 (logits 1, 2); reconstructor pairs (2x, x) class 0 (logits 3, -2)
    expected = (softplus(-1) + softplus(-2)) / 2 + (softplus(3) + softplus(-2)) / 2
    assert gan.discriminator_loss(batch).terms["train/d_loss"].item() == pytest.approx(expected)


def test_reconstructor_pairs_are_drawn_around_f_of_x():
    gan = make(reconstructor_std=0.5)
    torch.manual_seed(0)
    eps = torch.randn(2, 2)
    torch.manual_seed(0)
    loss = gan.discriminator_loss(GANBatch(REAL, gan.generator(Z), Z)).terms["train/d_loss"].item()
    z_g = 2 * REAL + 0.5 * eps
    expected = (softplus(-1) + softplus(-2)) / 2 + sum(softplus((z_g[i, 0] + REAL[i, 1]).item()) for i in range(2)) / 2
    assert loss == pytest.approx(expected)


def test_each_loss_reaches_only_its_networks():
    gan = make()
    batch = GANBatch(REAL, gan.generator(Z), Z)

    nets = {"G": gan.generator, "F": gan.encoder, "D": gan.discriminator}

    g = gan.generator_loss(batch).terms
    assert reached(g["train/g_loss"], nets) == {"G", "D"}  # D's weights are frozen in the base step
    assert reached(g["train/reconstruction"], nets) == {"G", "F"}
    assert reached(gan.discriminator_loss(batch).terms["train/d_loss"], nets) == {"D"}
    owned = {id(p) for p in gan.generator_parameters()}
    assert owned == {id(p) for p in [*gan.generator.parameters(), *gan.encoder.parameters()]}


@pytest.mark.parametrize("kwargs, message", [({"pack": 2}, "model.pack=2"), ({"regularizers": [R1()]}, "regularizer")])
def test_refuses_packing_and_regularizers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


SMALL = ["model.latent_dim=8", "model.generator.mlp.hidden=[16,16]", "model.discriminator.mlp.hidden=[16]",
         "model.reconstructor.mlp.hidden=[16]"]
DATA = {"ring8": ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"],
        "digits": ["data=digits", "data.batch_size=32", "model.generator.conv.base_channels=4"]}


@pytest.mark.parametrize("data", DATA)
def test_trains_on_points_and_images(make_config, data):
    cfg = make_config("train", "model=veegan", *SMALL, *DATA[data], "trainer.max_steps=3",
                      "trainer.limit_val_batches=0", *FAST)
    metrics = train(cfg)
    ckpt = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert ckpt["global_step"] == 3
    assert any(k.startswith("encoder.") for k in ckpt["state_dict"])
    assert {"train/d_loss", "train/g_loss", "train/reconstruction"} <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values())
    assert model_from_checkpoint(ckpt).sample(5).shape[0] == 5
