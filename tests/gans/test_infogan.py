"""InfoGAN: the information term by hand, the bound rising on a toy problem, and train -> sample
mode=traverse end to end on digits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.errors import UserError
from gen_runner.gans.infogan import InfoGANModule
from gen_runner.gans.objectives import StandardGAN
from gen_runner.metrics.fidelity import code_accuracy
from gen_runner.nets.conditional import auxiliary_discriminator
from gen_runner.nets.gan import generator
from helpers import read_metrics, run_cli, run_directory


def _toy(categorical=(4,), continuous=1, **kwargs) -> InfoGANModule:
    torch.manual_seed(0)
    return InfoGANModule(lambda latent_dim, data_shape: generator(latent_dim, data_shape, mlp={"hidden": [32]}),
                         lambda data_shape, num_classes: auxiliary_discriminator(
                             data_shape, num_classes, mlp={"hidden": [32], "activation": "relu"}),
                         StandardGAN(), {"shape": [2]}, latent_dim=2, categorical=categorical,
                         continuous=continuous, **kwargs)


def test_info_terms_by_hand():
    gan = _toy(categorical=(2,), continuous=1, lambda_categorical=1.0, lambda_continuous=0.5)
    q = torch.tensor([[math.log(3), 0.0, 0.5]])  # Q(c1 = 0 | x) = 3/4; mean 0.5 for the continuous code
    codes = torch.tensor([[1.0, 0.0, 1.5]])  # c1 = 0, c2 = 1.5
    gaussian = 0.5 * 1.0**2 + 0.5 * math.log(2 * math.pi)
    weighted, nll = gan.info_terms(q, codes)
    assert nll.item() == pytest.approx(math.log(4 / 3) + gaussian)
    assert weighted.item() == pytest.approx(math.log(4 / 3) + 0.5 * gaussian)
    assert gan.code_entropy() == pytest.approx(math.log(2) + math.log(2))
    assert gan.latent_dim == 2 + 3 and gan.draw_noise(5).shape == (5, 5)
    onehot = gan.draw_noise(100)[:, 2:4]
    assert torch.equal(onehot.sum(1), torch.ones(100)) and set(onehot.argmax(1).tolist()) == {0, 1}


def test_the_mi_bound_rises_on_a_toy_problem():
    """G and Q minimising the information term alone: -log Q(c | G(z, c)) falls far below log K."""
    gan = _toy()
    opt = torch.optim.Adam(gan.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        noise = gan.draw_noise(128)
        loss = gan.info_terms(gan.discriminator(gan.generate(noise))[1], gan.codes_of(noise))[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.2 and np.mean(losses[-5:]) < 0.5 * losses[0]  # log 4 = 1.39 at the start


def test_code_accuracy_takes_the_best_code_to_class_map():
    codes = torch.tensor([0, 0, 1, 1, 2, 2])
    classes = torch.tensor([2, 2, 0, 1, 1, 1])  # code 0 -> 2, code 2 -> 1, code 1 -> 0: 5 of 6
    assert code_accuracy(torch.nn.functional.one_hot(classes, 3).float(), codes) == pytest.approx(5 / 6)


def test_traverse_grid_varies_one_code(tmp_path):
    gan = _toy(categorical=(3,), continuous=2)
    inputs = gan.traverse_inputs(code=1, rows=4, columns=5, span=2.0, generator=torch.Generator().manual_seed(0))
    grid = inputs.reshape(4, 5, -1)
    torch.testing.assert_close(grid[0, :, -1], torch.linspace(-2, 2, 5))  # the swept code
    assert torch.equal(grid[:, :, 2:5].argmax(2)[:, 0], torch.tensor([0, 1, 2, 0]))  # a row per value
    assert torch.equal(grid[..., :2], grid[:1, :1, :2].expand(4, 5, 2))  # one z for the grid
    with pytest.raises(UserError, match="code=2"):
        gan.traverse_inputs(code=2, rows=1, columns=2, span=2.0)


def test_train_and_traverse_through_the_cli(tmp_path):
    run = run_directory(run_cli("train", "model=infogan", "data=digits", "data.batch_size=32", "trainer.max_steps=3",
                                "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4",
                                "callbacks=minimal", cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert {"train/d_info_loss", "train/g_info_loss", "train/mi_bound"} <= metrics.keys()
    assert metrics["train/mi_bound"] <= math.log(10) + 2 * math.log(2)
    ckpt = run / "checkpoints/last.ckpt"
    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "mode=traverse", "mode.code=1", "mode.steps=5", cwd=tmp_path),
                        tmp_path)
    assert np.load(out / "samples/samples.npy").shape == (50, 1, 8, 8)
    width, height = Image.open(out / "samples/traverse.png").size
    assert ((width - 8) // 40, (height - 8) // 40) == (5, 10)  # 5 code values a row, a row per digit code
    classifier = run_directory(run_cli("train", "model=classifier", "data=digits", "trainer.max_steps=3",
                                       "callbacks=minimal", cwd=tmp_path), tmp_path) / "checkpoints/last.ckpt"
    out = run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.features=classifier",
                                f"eval.features_ckpt={classifier}", "eval.num_samples=100", "eval.metrics=[fid]",
                                f"eval.cache_dir={tmp_path / 'cache'}", cwd=tmp_path), tmp_path)
    assert 0.1 <= read_metrics(out)["code_accuracy"] <= 1  # a one-to-one map is right at least 1/K of the time
    proc = run_cli("sample", f"ckpt_path={ckpt}", "mode=traverse", "mode.code=2", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "code=2" in proc.stderr + proc.stdout
