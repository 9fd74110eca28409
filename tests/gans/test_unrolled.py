"""Unrolled GAN: D takes the ordinary step, G's gradient goes through K unrolled optimizer steps
(checked against finite differences and against torch's own optimizers), and it trains end to end."""
from __future__ import annotations

import copy
import math
from functools import partial

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers import FAST
from gen_runner.gans.module import GANBatch, GANModule
from gen_runner.gans.objectives import StandardGAN
from gen_runner.gans.unrolled import UnrolledGANModule
from gen_runner.nets.mlp import MLPDiscriminator, MLPGenerator
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.tasks.train import train

ADAM = partial(torch.optim.Adam, lr=0.05, betas=(0.5, 0.999))


def make(cls=UnrolledGANModule, optimizer=ADAM, **kwargs):
    torch.manual_seed(0)  # the same initial weights for every module
    return cls(generator=partial(MLPGenerator, hidden=[8], activation="tanh"),
               discriminator=partial(MLPDiscriminator, hidden=[8], activation="tanh"),
               objective=StandardGAN(), data={"shape": [2]}, optimizer=optimizer, latent_dim=3,
               latent="normal", **kwargs)


def fit(module, steps: int, precision="32-true"):
    """`steps` training steps (0: only set up the optimizers) through a minimal Trainer."""
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)  # the same noise for every module
    L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu", precision=precision).fit(
        module, DataLoader(TensorDataset(x), batch_size=32))
    return module


def d_optimizer(module):
    return module.optimizers(use_pl_optimizer=False)[1]


@pytest.mark.parametrize("simultaneous", [False, True])
def test_the_discriminator_takes_exactly_the_ordinary_step(simultaneous):
    """Simultaneous: the unrolling runs before D's step, from the same parameters and state."""
    plain = fit(make(GANModule, simultaneous=simultaneous), steps=1)
    unrolled = fit(make(unroll_steps=3, simultaneous=simultaneous), steps=1)
    for key, value in plain.discriminator.state_dict().items():
        torch.testing.assert_close(unrolled.discriminator.state_dict()[key], value, rtol=0, atol=0)
    for a, b in zip(d_optimizer(plain).state.values(), d_optimizer(unrolled).state.values()):
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=0)
    assert not torch.equal(plain.generator.net[0].weight, unrolled.generator.net[0].weight)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g, dtype=torch.float64)


def generator_gradient(module, real, z):
    loss = module.generator_loss(GANBatch(real, module.generator(z), z)).terms["train/g_loss"]
    return torch.autograd.grad(loss, list(module.generator.parameters()))


def test_unrolled_gradient_matches_finite_differences(batch):
    real, z = batch
    module = fit(make(unroll_steps=3), steps=2, precision="64-true")  # Adam's moments in use
    unrolled = generator_gradient(module, real, z)
    module.unroll_steps = 0
    assert not torch.allclose(generator_gradient(module, real, z)[0], unrolled[0])
    module.unroll_steps, module.second_order = 3, False
    assert not torch.allclose(generator_gradient(module, real, z)[0], unrolled[0])

    module.second_order, h = True, 1e-6
    for p, grad in zip(module.generator.parameters(), unrolled):
        for i in (0, p.numel() - 1):
            values = []
            for sign in (1, -1):
                with torch.no_grad():
                    p.view(-1)[i] += sign * h
                values.append(module.generator_loss(GANBatch(real, module.generator(z), z)).terms["train/g_loss"]
                              .detach())
                with torch.no_grad():
                    p.view(-1)[i] -= sign * h
            assert grad.view(-1)[i].item() == pytest.approx(((values[0] - values[1]) / (2 * h)).item(),
                                                            rel=1e-5, abs=1e-9)


def test_dead_units_leave_the_gradient_finite(batch):
    """A unit the output ignores gets zero gradients, so Adam's first second moment is exactly 0."""
    real, z = batch
    module = fit(make(unroll_steps=2), steps=0, precision="64-true")
    with torch.no_grad():
        list(module.discriminator.parameters())[-2][0, 0] = 0.0  # the output layer's weight on unit 0
    assert all(torch.isfinite(g).all() for g in generator_gradient(module, real, z))


@pytest.mark.parametrize("optimizer, steps", [
    (ADAM, 2), (ADAM, 0), (partial(torch.optim.AdamW, lr=0.05, weight_decay=0.1), 2),
    (partial(torch.optim.Adam, lr=0.05, weight_decay=0.1), 2), (partial(torch.optim.SGD, lr=0.5), 2),
], ids=["adam", "adam-no-state-yet", "adamw", "adam-l2", "sgd"])
def test_first_order_surrogate_is_the_value_at_the_optimizers_own_steps(batch, optimizer, steps):
    """theta_D^K equals K steps of a copy of D's torch optimizer; without second-order terms G's
    gradient is that of the game's value, -d_loss, at those (constant) parameters."""
    real, z = batch
    module = fit(make(optimizer=optimizer, unroll_steps=3, second_order=False), steps=steps, precision="64-true")
    fake = module.generator(z)
    d = copy.deepcopy(module.discriminator)
    opt = optimizer(d.parameters())
    opt.load_state_dict(copy.deepcopy(d_optimizer(module).state_dict()))  # load_state_dict shares tensors
    for _ in range(3):
        opt.zero_grad()
        module.objective.d_loss(d(real), d(fake.detach())).backward()
        opt.step()

    params, _ = module.unrolled_state(real, fake)
    for name, p in d.named_parameters():
        torch.testing.assert_close(params[name], p)
    value = -module.objective.d_loss(d(real), d(fake))
    expected = torch.autograd.grad(value, list(module.generator.parameters()))
    for got, want in zip(generator_gradient(module, real, z), expected):
        torch.testing.assert_close(got, want)


SMALL = {"ring8": ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100",
                   "data.batch_size=50", "model.latent_dim=8", "model.generator.mlp.hidden=[16,16]",
                   "model.discriminator.mlp.hidden=[16]"],
         "digits": ["data=digits", "data.batch_size=32", "model.latent_dim=8", "model.generator.conv.base_channels=4",
                    "model.discriminator.conv.base_channels=4", "model.unroll_steps=2"]}


@pytest.mark.parametrize("data", SMALL)
def test_trains_and_writes_a_checkpoint(make_config, data):
    cfg = make_config("train", "model=unrolled_gan", *SMALL[data], "trainer.max_steps=3",
                      "trainer.limit_val_batches=0", *FAST)
    metrics = train(cfg)
    ckpt = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert ckpt["global_step"] == 3 and ckpt["gen_runner"]["choices"]["model"] == "unrolled_gan"
    assert {"train/d_loss", "train/g_loss"} <= metrics.keys()
    assert all(math.isfinite(v) for v in metrics.values())
    assert model_from_checkpoint(ckpt).sample(5).shape[0] == 5
