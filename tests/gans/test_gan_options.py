"""Every GAN model option trains a few steps on points and on images; packing, weight clipping
and the simultaneous update do what they say."""
from __future__ import annotations

import copy
import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gen_runner.errors import UserError
from gen_runner.gans.module import GANModule
from gen_runner.gans.objectives import StandardGAN
from gen_runner.nets.gan import discriminator, generator
from gen_runner.checkpoints import load_checkpoint
from gen_runner.instantiate import build_model
from gen_runner.tasks.train import train
from helpers import FAST

TINY = ["model.generator.mlp.hidden=[16,16]", "model.discriminator.mlp.hidden=[16,16]",
        "model.generator.conv.base_channels=8", "model.discriminator.conv.base_channels=8"]
TOY = ["data=ring8", "data.num_train=800", "data.batch_size=40"]
IMAGES = ["data=digits", "data.batch_size=24"]
OPTIONS = ["wgan", "wgan_gp", "lsgan", "hinge_gan", "pacgan", "pacgan4", "mbd_gan"]


@pytest.mark.parametrize("data", ["toy", "images"])
@pytest.mark.parametrize("option", OPTIONS)
def test_option_trains_a_few_steps(make_config, option, data):
    cfg = make_config("train", f"model={option}", *TINY, *(TOY if data == "toy" else IMAGES),
                      "trainer.max_steps=6", *FAST)
    metrics = train(cfg)
    ckpt = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert ckpt["global_step"] == 6 and torch.isfinite(torch.tensor(metrics["train/d_loss"]))
    if option == "wgan":
        d = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("discriminator.") and "running_" not in k
             and v.is_floating_point()}
        assert all(v.abs().max() <= 0.01 for v in d.values())  # clipped after every critic step
    if option == "wgan_gp":
        assert "train/d_GradientPenalty" in metrics


def test_gradient_clipping_works_under_manual_optimization(make_config):
    """SGD with lr 1 and gradients clipped to norm 1e-8: the weights cannot move by more than 1e-8."""
    cfg = make_config("train", "model=gan", *TINY, *TOY, "optimizer=sgd", "optimizer.lr=1.0", "optimizer.momentum=0",
                      "model.grad_clip=1e-8", "trainer.max_steps=3", *FAST)
    torch.manual_seed(cfg.seed)  # as train() seeds before it builds the model: the same initial weights
    start = build_model(cfg.model, {"shape": [2], "num_levels": None}, cfg.optimizer)
    train(cfg)
    end = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")["state_dict"]
    moved = max((end[k] - v).abs().max().item() for k, v in start.state_dict().items() if v.is_floating_point()
                and "running" not in k)
    assert moved < 3 * 1e-8 * 2  # three steps, two nets at most


def test_benchmark_preset_composes_papers_nets(make_config):
    cfg = make_config("train", "experiment=modes_grid25", "model=pacgan3", "budget=full")
    assert cfg.data.batch_size == 300 and cfg.trainer.max_steps == 400_000
    assert cfg.optimizer.betas == [0.8, 0.999] and cfg.model.simultaneous is True
    module = build_model(cfg.model, {"shape": [2], "num_levels": None}, cfg.optimizer)
    first = module.discriminator.body[0].linear
    assert first.in_features == 6 and first.out_features == 200 * 5  # packing widens only the input
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in module.generator.modules()) == 4
    assert module.generator.net[0].bias is None and module.generator.net[-1].bias is not None


def _gan(pack=1, simultaneous=False):
    torch.manual_seed(0)
    return GANModule(lambda **kw: generator(**kw, mlp={"hidden": [8]}),
                     lambda **kw: discriminator(**kw, mlp={"hidden": [8]}), StandardGAN(),
                     {"shape": [2], "num_levels": None}, latent_dim=2, pack=pack, simultaneous=simultaneous)


def test_the_discriminator_sees_packed_samples():
    gan = _gan(pack=3)
    x = torch.arange(12.0).view(6, 2)
    assert torch.equal(gan.packed(x), torch.tensor([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11.0]]))
    assert gan.discriminator.body[0].in_features == 6
    with pytest.raises(UserError, match="divisible by 3"):
        gan.packed(torch.zeros(5, 2))


def test_packing_refuses_a_batch_it_cannot_split_before_training(make_config):
    """model=pacgan3 on data whose default batch is 64: one line at build time, not at the first step."""
    cfg = make_config("train", "model=pacgan3", *TINY, "data=digits", "trainer.max_steps=1", *FAST)
    with pytest.raises(UserError, match=r"^model.pack=3 needs data.batch_size divisible by 3, got 64: "
                                        r"set data.batch_size=63 or 66$"):
        train(cfg)
    with pytest.raises(UserError, match="set data.batch_size=3$"):
        GANModule(generator, discriminator, StandardGAN(), {"shape": [2], "batch_size": 2}, pack=3)
    assert GANModule(generator, discriminator, StandardGAN(), {"shape": [2], "batch_size": 6}, pack=3).pack == 3


def _one_step(simultaneous: bool):
    """One training step through Lightning with SGD and fixed noise; (module before, after, batch, z)."""
    gan = _gan(simultaneous=simultaneous)
    gan.optimizer_factory = functools.partial(torch.optim.SGD, lr=0.5)
    z, x = torch.randn(8, 2), torch.randn(8, 2)
    gan.draw_noise = lambda n, generator=None: z
    before = copy.deepcopy(gan)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(gan, DataLoader(TensorDataset(x), batch_size=8))
    return before, gan, x, z


def _generator_after_step(gan_with_d, generator_start, x, z):
    """G after one SGD step (lr 0.5) on g_loss through the given discriminator."""
    g = copy.deepcopy(generator_start)
    loss = gan_with_d.objective.g_loss(gan_with_d.discriminator(g(z)))
    grads = torch.autograd.grad(loss, list(g.parameters()))
    return [p - 0.5 * dp for p, dp in zip(g.parameters(), grads)]


@pytest.mark.parametrize("simultaneous", [True, False])
def test_simultaneous_uses_the_discriminator_before_its_step(simultaneous):
    before, after, x, z = _one_step(simultaneous)
    with_old_d = _generator_after_step(before, before.generator, x, z)
    with_new_d = _generator_after_step(after, before.generator, x, z)
    expected, other = (with_old_d, with_new_d) if simultaneous else (with_new_d, with_old_d)
    for p, e in zip(after.generator.parameters(), expected):
        torch.testing.assert_close(p, e)
    assert any(not torch.allclose(e, o) for e, o in zip(expected, other))
