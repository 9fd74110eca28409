"""BiGAN/ALI: the losses on linear nets by hand, where each gradient goes, the encoder learning G's
inverse on 2-D data, the joint nets' shapes, and train -> eval -> sample mode=reconstruct."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gen_runner.errors import UserError
from gen_runner.gans.bigan import BiGANModule
from gen_runner.gans.module import GANBatch
from gen_runner.gans.objectives import StandardGAN, Wasserstein
from gen_runner.nets.gan import JointDiscriminator, encoder, joint_discriminator
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.instantiate import build_datamodule
from gen_runner.tasks import common
from gen_runner.tasks.evaluate import evaluate
from gen_runner.tasks.sample import sample
from gen_runner.tasks.train import train
from helpers import FAST, read_metrics, reached


def linear(weight):
    weight = torch.tensor(weight)
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.zero_()
    return layer


def make(objective=None):
    """G(z) = z, E(x) = 2 x, D(x, z) = z_1 + x_2 (x, z in R^2)."""
    return BiGANModule(
        generator=lambda latent_dim, data_shape: linear([[1.0, 0.0], [0.0, 1.0]]),
        discriminator=lambda data_shape, latent_dim: JointDiscriminator(
            nn.Flatten(), nn.Identity(), nn.Sequential(linear([[1.0, 0.0, 0.0, 1.0]]), nn.Flatten(0))),
        encoder=lambda data_shape, latent_dim: linear([[2.0, 0.0], [0.0, 2.0]]),
        objective=objective or StandardGAN(), data={"shape": [2]}, latent_dim=2)


Z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
REAL = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
# data pairs (x, E(x) = 2x): logits 2 x_1 + x_2 = 3, -2; sample pairs (z, z): logits z_1 + z_2 = 1, 2
DATA_LOGITS, SAMPLE_LOGITS = [3.0, -2.0], [1.0, 2.0]


def softplus(t):
    return math.log1p(math.exp(t))


def mean(values):
    return sum(values) / len(values)


@pytest.mark.parametrize("generator_loss", ["non_saturating", "minimax"])
def test_losses_by_hand(generator_loss):
    gan = make(StandardGAN(generator_loss))
    batch = GANBatch(REAL, gan.generator(Z), Z)
    d_loss = mean([softplus(-t) for t in DATA_LOGITS]) + mean([softplus(t) for t in SAMPLE_LOGITS])
    assert gan.discriminator_loss(batch).terms["train/d_loss"].item() == pytest.approx(d_loss)
    swapped = mean([softplus(-t) for t in SAMPLE_LOGITS]) + mean([softplus(t) for t in DATA_LOGITS])
    expected = swapped if generator_loss == "non_saturating" else -d_loss
    assert gan.generator_loss(batch).terms["train/g_loss"].item() == pytest.approx(expected)


def test_wasserstein_gives_e_and_g_the_critics_gap():
    gan = make(Wasserstein())
    g_loss = gan.generator_loss(GANBatch(REAL, gan.generator(Z), Z)).terms["train/g_loss"].item()
    assert g_loss == pytest.approx(mean(DATA_LOGITS) - mean(SAMPLE_LOGITS))


def test_each_loss_reaches_only_its_networks():
    gan = make()
    batch = GANBatch(REAL, gan.generator(Z), Z)

    nets = {"G": gan.generator, "E": gan.encoder, "D": gan.discriminator}

    assert reached(gan.discriminator_loss(batch).terms["train/d_loss"], nets) == {"D"}  # E(x) and G(z) held fixed
    assert reached(gan.generator_loss(batch).terms["train/g_loss"], nets) == {"G", "E", "D"}  # the step freezes D
    assert {id(p) for p in gan.generator_parameters()} == {id(p) for p in [*gan.generator.parameters(),
                                                                            *gan.encoder.parameters()]}


def test_alis_stochastic_encoder_draws_reparametrised_latents():
    """E(x) = [mu, log sigma] = [1, 2, log 0.5, log 3] for every x: z ~ N((1, 2), diag(0.25, 9))."""
    gan = BiGANModule(lambda latent_dim, data_shape: nn.Identity(), lambda data_shape, latent_dim: nn.Identity(),
                      lambda data_shape, latent_dim: nn.Linear(2, latent_dim), StandardGAN(), {"shape": [2]},
                      latent_dim=2, stochastic_encoder=True)
    with torch.no_grad():
        gan.encoder.weight.zero_()
        gan.encoder.bias.copy_(torch.tensor([1.0, 2.0, math.log(0.5), math.log(3.0)]))
    torch.manual_seed(0)
    z = gan.encode(torch.randn(20000, 2))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, 2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 3.0]), atol=0.05, rtol=0)
    assert gan.encode(torch.randn(3, 2), sample=False).tolist() == [[1.0, 2.0]] * 3
    z.sum().backward()  # the draw is differentiable in E's outputs
    assert gan.encoder.bias.grad[2:].abs().min() > 0


@pytest.mark.parametrize("kwargs, message", [({"pack": 2}, "model.pack=2"),
                                             ({"regularizers": [object()]}, "regularizer")])
def test_refuses_packing_and_regularizers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiGANModule(lambda **_: None, lambda **_: None, lambda **_: None, StandardGAN(), {"shape": [2]}, **kwargs)


@pytest.mark.parametrize("data_shape", [(2,), (1, 8, 8), (3, 16, 16)])
def test_joint_nets_shapes(data_shape):
    x, z = torch.randn(5, *data_shape), torch.randn(5, 7)
    for kind in ("mlp", "conv") if len(data_shape) == 3 else ("mlp",):
        conv = {"base_channels": 4}
        assert encoder(data_shape, 7, kind, conv=conv)(x).shape == (5, 7)
        d = joint_discriminator(data_shape, 7, kind, mlp={"hidden": [8]}, conv=conv, z_hidden=[6],
                                joint={"hidden": [8]})
        assert d(x, z).shape == (5,)
        z_changed = z.clone()
        z_changed[0] += 1
        d.eval()
        changed = d(x, z_changed) != d(x, z)
        assert changed.tolist() == [True, False, False, False, False]  # each pair judged alone


# -- training ---------------------------------------------------------------------------------------
MOONS = ["model=bigan", "data=moons", "data.num_train=5000", "data.num_val=100", "data.num_test=1000",
         "data.batch_size=100", "model.latent_dim=2", "model.generator.mlp.hidden=[64,64]",
         "model.encoder.mlp.hidden=[64,64]", "model.discriminator.mlp.hidden=[128,128]",
         "trainer.limit_val_batches=0", *FAST]


def test_the_encoder_learns_an_approximate_inverse_on_2d_data(make_config):
    cfg = make_config("train", *MOONS, "trainer.max_steps=300")
    train(cfg)
    gan = model_from_checkpoint(load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt"))
    gan.eval()
    x = build_datamodule(cfg.data, cfg.seed).splits["test"].tensors[0]
    shuffled = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
    # G(E(x)) lands near x: a small fraction of the distance between two random data points
    assert (gan.reconstruction(x) - x).pow(2).sum(1).mean() < 0.15 * (x - shuffled).pow(2).sum(1).mean()
    z = gan.draw_noise(1000, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z_back = gan.encode(gan.generate(z))
    assert (z_back - z).pow(2).sum(1).mean() < 0.25 * (z - z.flip(0)).pow(2).sum(1).mean()


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_train_eval_and_reconstruct_on_digits(make_config, kind):
    """BiGAN's MLPs, and ALI's conv nets with its stochastic encoder."""
    nets = [f"model.{net}.kind={kind}" for net in ("generator", "encoder", "discriminator")]
    nets += ["model.stochastic_encoder=true"] if kind == "conv" else []
    cfg = make_config("train", "model=bigan", "data=digits", "data.batch_size=32", "trainer.max_steps=2",
                      "model.latent_dim=8", "model.generator.mlp.hidden=[16]", "model.encoder.mlp.hidden=[16]",
                      "model.discriminator.mlp.hidden=[16]", "model.generator.conv.base_channels=4",
                      "model.encoder.conv.base_channels=4", "model.discriminator.conv.base_channels=4",
                      "model.discriminator.joint.hidden=[16]", *nets, *FAST)
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    evaluate(make_config("eval", f"ckpt_path={ckpt}"))
    metrics = read_metrics(common.run_dir())
    assert 0 < metrics["reconstruction_mse"] < 1 and 0 <= metrics["probe_accuracy"] <= 1
    sample(make_config("sample", f"ckpt_path={ckpt}", "mode=reconstruct", "num_samples=10", "mode.steps=4"))
    out = common.run_dir() / "samples"
    pictured = np.load(out / "samples.npy")
    assert pictured.shape == (20, 1, 8, 8) and (out / "reconstruct.png").is_file()
    test_images = build_datamodule(cfg.data, cfg.seed).splits["test"].tensors[0][:10].numpy() / 16
    np.testing.assert_allclose(pictured[[0, 1, 2, 3, 8, 9, 10, 11, 16, 17]], test_images)  # rows x, G(E(x)), ...


def test_reconstruct_needs_an_encoder(make_config):
    cfg = make_config("train", "model=gan", "data=moons", "data.batch_size=32", "trainer.max_steps=1",
                      "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]", *FAST)
    train(cfg)
    with pytest.raises(UserError, match="mode=reconstruct: a model=gan checkpoint samples in the modes samples, interpolate, arithmetic"):
        sample(make_config("sample", f"ckpt_path={cfg.paths.output_dir}/checkpoints/last.ckpt", "mode=reconstruct"))
