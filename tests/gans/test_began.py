"""BEGAN: the autoencoder nets, the losses and k_t's update against hand-computed values, k_t's
clip and persistence, and short in-process runs on points and digits."""
import csv
import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import FAST, read_metrics
from gen_runner.gans.began import BEGANModule
from gen_runner.nets.autoencoder import (BEGANGenerator, ConvAutoencoder, MLPAutoencoder, began_discriminator,
                                         began_generator)
from gen_runner.nets.mlp import MLPGenerator
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.tasks.train import train

TOY = ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
SMALL = ["model.generator.vector.hidden=[32,32]", "model.discriminator.vector.hidden=[16,16]",
         "model.discriminator.vector.code_dim=4", "model.generator.image.channels=8",
         "model.discriminator.image.channels=8", "model.discriminator.image.code_dim=8"]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_conv_nets_keep_the_image_shape(shape):
    x = torch.rand(2, *shape) * 2 - 1
    assert ConvAutoencoder(shape, channels=8, code_dim=8)(x).shape == x.shape
    assert BEGANGenerator(16, shape, channels=8)(torch.rand(2, 16)).shape == x.shape


def test_nets_by_data_kind():
    assert isinstance(began_generator(8, (1, 8, 8)), BEGANGenerator)
    assert isinstance(began_discriminator((1, 8, 8)), ConvAutoencoder)
    assert isinstance(began_generator(8, (2,)), MLPGenerator)
    ae = began_discriminator((2,), vector={"hidden": [16], "code_dim": 4})
    assert isinstance(ae, MLPAutoencoder) and ae(torch.randn(5, 2)).shape == (5, 2)
    assert MLPAutoencoder((1, 8, 8))(torch.randn(3, 1, 8, 8)).shape == (3, 1, 8, 8)  # flattened images
    assert not any(isinstance(m, nn.Tanh) for m in ConvAutoencoder((1, 8, 8)).modules())  # linear output


def zeros(shape):
    """A zero linear layer (in, out): a constant map that still has parameters for the optimizer."""
    net = nn.Linear(*shape)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    return net


def began(discriminator, generator=lambda latent_dim, data_shape: zeros((latent_dim, 2)), **kwargs):
    return BEGANModule(generator, discriminator, {"shape": [2]}, functools.partial(torch.optim.SGD, lr=0.0),
                       latent_dim=3, **kwargs)


def test_reconstruction_error_is_the_mean_l1_error():
    v = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert began(lambda data_shape: nn.Identity()).reconstruction_error(v).item() == 0
    assert began(lambda data_shape: zeros((2, 2))).reconstruction_error(v).item() == pytest.approx(1.5)


@pytest.mark.parametrize("gamma, lambda_k, k_1", [
    (0.5, 0.1, 0.2 + 0.1 * (0.5 * 1.5 - 0.5)),
    (0.5, 10.0, 1.0),  # 0.2 + 10 * 0.25 = 2.7, clipped
    (0.1, 10.0, 0.0),  # 0.2 + 10 * (0.15 - 0.5) = -3.3, clipped
])
def test_one_step_by_hand(gamma, lambda_k, k_1):
    """D(v) = 0, so L(v) = mean |v|; G(z) = (0.5, -0.5); lr 0 keeps both nets as they are."""
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0]])  # L(x) = 1.5

    def generator(latent_dim, data_shape):
        net = zeros((latent_dim, 2))
        net.bias.data = torch.tensor([0.5, -0.5])  # L(G(z)) = 0.5
        return net

    model = began(lambda data_shape: zeros((2, 2)), generator, gamma=gamma, lambda_k=lambda_k, k_0=0.2)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, DataLoader(TensorDataset(x), batch_size=2))
    logged = {k: v.item() for k, v in trainer.callback_metrics.items()}
    assert trainer.global_step == 1
    assert logged["train/d_loss"] == pytest.approx(1.5 - 0.2 * 0.5)  # L(x) - k_0 L(G(z))
    assert logged["train/g_loss"] == pytest.approx(0.5)
    assert logged["train/m_global"] == pytest.approx(1.5 + abs(gamma * 1.5 - 0.5))
    assert logged["train/k"] == pytest.approx(k_1) and model.k.item() == pytest.approx(k_1)


def test_k_is_a_persistent_buffer():
    model = began(lambda data_shape: nn.Identity(), k_0=0.37)
    other = began(lambda data_shape: nn.Identity())
    assert other.k.item() == 0
    other.load_state_dict(model.state_dict())
    assert other.k.item() == pytest.approx(0.37)


def logged_k(out: Path) -> list[float]:
    with open(out / "csv" / "metrics.csv") as f:
        return [float(row["train/k"]) for row in csv.DictReader(f) if row.get("train/k")]


def test_trains_on_points_with_k_clipped_and_kept_in_the_checkpoint(make_config):
    """lambda_k = 1000 would throw k_t far outside [0, 1] at every step without the clip."""
    cfg = make_config("train", "model=began", *SMALL, *TOY, "model.lambda_k=1000", "model.k_0=0.5",
                      "trainer.max_steps=6", "logger=csv", *FAST)
    train(cfg)
    out = Path(cfg.paths.output_dir)
    ks = logged_k(out)
    assert len(ks) == 6 and all(0 <= k <= 1 for k in ks) and {0.0, 1.0} & set(ks)
    assert {"train/d_loss", "train/g_loss", "train/k", "train/m_global"} <= read_metrics(out).keys()
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 6 and ckpt["state_dict"]["k"].item() == pytest.approx(ks[-1])
    assert model_from_checkpoint(ckpt).k.item() == pytest.approx(ks[-1])


def test_trains_on_digits(make_config):
    cfg = make_config("train", "model=began", *SMALL, "data=digits", "data.batch_size=32", "trainer.max_steps=4",
                      *FAST)
    metrics = train(cfg)
    assert {"train/k", "train/m_global"} <= metrics.keys()
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    model = model_from_checkpoint(load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt"))
    samples = model.sample(4)
    assert samples.shape == (4, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
