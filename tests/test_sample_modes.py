"""`gen-runner sample mode=interpolate|arithmetic` (gen_runner/walks.py): slerp and lerp by hand, and
every mode's files for an unconditional GAN, a conditional GAN and a flow checkpoint."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.errors import UserError
from gen_runner.tasks import common
from gen_runner.tasks.sample import sample
from gen_runner.tasks.train import train
from gen_runner.walks import interpolate, slerp
from helpers import FAST, compose_config


# -- the paths ------------------------------------------------------------------------------------
def test_slerp_by_hand_on_a_quarter_circle():
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    path = slerp(a, b, torch.tensor([0.0, 1 / 3, 0.5, 1.0]))[0]
    s = math.sqrt(2)
    torch.testing.assert_close(path, torch.tensor([[2.0, 0.0], [s * math.sqrt(1.5), s / math.sqrt(2)],
                                                   [s, s], [0.0, 2.0]]))


def test_slerp_keeps_gaussian_norms_where_the_line_shrinks_them():
    a, b = torch.randn(2, 64, 512, generator=torch.Generator().manual_seed(0))
    spherical, straight = interpolate(a, b, 9, "slerp"), interpolate(a, b, 9, "linear")
    for path in (spherical, straight):  # endpoints are the latents themselves
        torch.testing.assert_close(path[:, 0], a)
        torch.testing.assert_close(path[:, -1], b)
    norms, ends = spherical.norm(dim=2), torch.stack([a.norm(dim=1), b.norm(dim=1)], 1)
    assert (norms >= ends.min(1, keepdim=True).values - 1e-4).all()  # between the endpoints' norms
    assert (norms <= ends.max(1, keepdim=True).values + 1e-4).all()
    middle = straight[:, 4].norm(dim=1) / ends.mean(1)
    assert middle.mean() == pytest.approx(1 / math.sqrt(2), abs=0.02)  # the line's midpoint: norm / sqrt(2)


def test_slerp_between_parallel_latents_is_the_line_and_images_keep_their_shape():
    a = torch.ones(1, 1, 2, 2)
    torch.testing.assert_close(slerp(a, 3 * a, torch.tensor([0.5])), 2 * a[:, None])
    with pytest.raises(UserError, match="steps=1"):
        interpolate(a, a, 1, "slerp")


# -- through `sample`, from checkpoints ------------------------------------------------------------------
SMALL_GAN = ["data=digits", "data.batch_size=32", "trainer.max_steps=1", "model.latent_dim=8",
             "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4", *FAST]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    runs = {"dcgan": ["model=dcgan", "model.latent=normal", *SMALL_GAN],
            "cgan": ["model=cgan", "model.generator.kind=conv", "model.discriminator.kind=conv", *SMALL_GAN],
            "realnvp": ["model=realnvp", "data=moons", "data.batch_size=32", "trainer.max_steps=1", *FAST]}
    out = {}
    for name, overrides in runs.items():
        cfg = compose_config("train", overrides, tmp_path_factory.mktemp(name))
        train(cfg)
        out[name] = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    return out


def _run(make_config, ckpt, *options):
    """`gen-runner sample` in process; its samples/ directory."""
    sample(make_config("sample", f"ckpt_path={ckpt}", *options))
    return common.run_dir() / "samples"


def _tiles(path, side=8) -> tuple[int, int]:
    width, height = Image.open(path).size
    tile = (side + 2) * (32 // side)
    return (width - 8) // tile, (height - 8) // tile


def test_interpolation_rows_start_and_end_at_the_seeds_samples(make_config, checkpoints):
    out = _run(make_config, checkpoints["dcgan"], "mode=interpolate", "num_samples=3", "mode.steps=5")
    walk = np.load(out / "samples.npy")
    assert walk.shape == (15, 1, 8, 8) and _tiles(out / "interpolate.png") == (5, 3)
    out = _run(make_config, checkpoints["dcgan"], "num_samples=6")  # the same seed's 2 x 3 latents
    drawn = np.load(out / "samples.npy")
    np.testing.assert_allclose(walk[[0, 4, 5, 9]], drawn[[0, 3, 1, 4]], atol=1e-6)


def test_arithmetic_operands_are_the_seeds_samples(make_config, checkpoints):
    groups = "mode.groups=[[0,5],[1],[2,3,4]]"
    out = _run(make_config, checkpoints["dcgan"], "mode=arithmetic", "num_samples=6", groups)
    figure = np.load(out / "samples.npy")
    assert figure.shape == (16, 1, 8, 8) and _tiles(out / "arithmetic.png") == (4, 4)  # 3 operand rows + result
    drawn = np.load(_run(make_config, checkpoints["dcgan"], "num_samples=6") / "samples.npy")
    np.testing.assert_allclose(figure[[0, 1, 2, 4, 8, 9, 10]], drawn[[0, 5, 5, 1, 2, 3, 4]], atol=1e-6)
    out = _run(make_config, checkpoints["dcgan"], "mode=arithmetic", "num_samples=9")  # 3 blocks of 3
    assert np.load(out / "samples.npy").shape == (16, 1, 8, 8)
    with pytest.raises(UserError, match="indices must lie in 0..5"):
        _run(make_config, checkpoints["dcgan"], "mode=arithmetic", "num_samples=6", "mode.groups=[[0],[1],[6]]")


def test_conditional_walks_keep_a_label_a_row_and_swap_labels_for_the_result(make_config, checkpoints):
    out = _run(make_config, checkpoints["cgan"], "mode=interpolate", "labels=[1,7]", "mode.steps=4",
                  "mode.interpolation=slerp")
    assert np.load(out / "samples.npy").shape == (8, 1, 8, 8)
    assert np.load(out / "labels.npy").tolist() == [1] * 4 + [7] * 4
    out = _run(make_config, checkpoints["cgan"], "mode=arithmetic")
    assert np.load(out / "samples.npy").shape == (3 * 4 + 10, 1, 8, 8)
    assert np.load(out / "labels.npy")[12:].tolist() == list(range(10))  # z decoded for every class
    assert _tiles(out / "arithmetic.png") == (10, 4)  # operand rows padded to the result's width


def test_flows_walk_their_base_space(make_config, checkpoints):
    out = _run(make_config, checkpoints["realnvp"], "mode=interpolate", "num_samples=2", "mode.steps=3")
    assert np.load(out / "samples.npy").shape == (6, 2) and (out / "interpolate.png").is_file()
    out = _run(make_config, checkpoints["realnvp"], "mode=arithmetic", "mode.group_size=2")
    assert np.load(out / "samples.npy").shape == (3 * 3 + 3, 2) and (out / "arithmetic.png").is_file()
    with pytest.raises(UserError, match="mode=traverse: a model=realnvp checkpoint samples in the modes "
                                        "samples, interpolate, arithmetic; pick one"):
        _run(make_config, checkpoints["realnvp"], "mode=traverse")
