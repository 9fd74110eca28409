"""The truncation trick (BigGAN, Brock et al. 2019): z from N(0, 1) truncated to [-t, t], values beyond
resampled (gen_runner/truncation.py); `sample truncation=t` / `eval truncation=t` for every GAN with
Gaussian noise, and one-line refusals for models without it."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scipy import stats

from gen_runner.truncation import truncated_normal
from helpers import FAST, read_metrics, run_cli, run_directory


@pytest.mark.parametrize("threshold", [0.2, 1.0, 2.5])
def test_draws_stay_within_the_threshold(threshold):
    z = truncated_normal((4000, 8), threshold, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 8) and z.abs().max() <= threshold
    assert z.abs().max() > 0.95 * threshold  # the whole range is used, not squeezed into it


@pytest.mark.parametrize("threshold", [1.0, 2.0])
def test_the_draws_follow_the_truncated_normal(threshold):
    """Kolmogorov-Smirnov against N(0, 1) conditioned on [-t, t] (fixed seed); a uniform on [-t, t]
    and a clamped normal, the two easy mistakes, are both rejected by the same test."""
    z = truncated_normal((20000,), threshold, torch.Generator().manual_seed(0)).numpy()
    truncnorm = stats.truncnorm(-threshold, threshold).cdf
    assert stats.kstest(z, truncnorm).pvalue > 0.01
    assert np.mean(z) == pytest.approx(0, abs=0.02)
    clamped = np.clip(np.random.default_rng(0).standard_normal(20000), -threshold, threshold)
    uniform = np.random.default_rng(0).uniform(-threshold, threshold, 20000)
    assert stats.kstest(clamped, truncnorm).pvalue < 1e-6 and stats.kstest(uniform, truncnorm).pvalue < 1e-6


def test_a_seed_gives_the_same_draw():
    def draw(seed):
        return truncated_normal((64, 16), 0.7, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    with pytest.raises(ValueError, match="pass a value > 0"):
        truncated_normal((2,), 0.0)


# -- through the CLI -------------------------------------------------------------------------------------------
SMALL_GAN = ["model=dcgan", "data=digits", "data.batch_size=32", "trainer.max_steps=1", "model.latent_dim=8",
             "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4", *FAST]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Checkpoints of a Gaussian-noise GAN, a uniform-noise GAN and a flow, and a digits classifier."""
    cwd = tmp_path_factory.mktemp("truncation")
    trained = {name: run_directory(run_cli("train", *args, cwd=cwd), cwd) / "checkpoints/last.ckpt" for name, args in {
        "normal": [*SMALL_GAN, "model.latent=normal"],
        "uniform": SMALL_GAN,
        "flow": ["model=realnvp", "data=moons", "data.batch_size=32", "trainer.max_steps=1", *FAST],
        "classifier": ["model=classifier", "data=digits", "trainer.max_steps=2", *FAST]}.items()}
    return cwd, trained


def test_gan_samples_and_eval_with_truncation(runs):
    cwd, ckpt = runs

    def samples(*extra):
        out = run_directory(run_cli("sample", f"ckpt_path={ckpt['normal']}", "num_samples=16", *extra, cwd=cwd), cwd)
        return np.load(out / "samples/samples.npy")

    plain, truncated = samples(), samples("truncation=0.3")
    assert not np.allclose(plain, truncated)
    np.testing.assert_array_equal(truncated, samples("truncation=0.3"))  # seeded: the same draw again
    # less variety: the truncated samples spread less around their mean
    assert truncated.std(axis=0).mean() < plain.std(axis=0).mean()

    def evaluate(*extra):
        return read_metrics(run_directory(run_cli(
            "eval", f"ckpt_path={ckpt['normal']}", "eval.features=classifier", f"eval.features_ckpt={ckpt['classifier']}",
            "eval.num_samples=100", "eval.metrics=[fid]", f"eval.cache_dir={cwd / 'cache'}", *extra, cwd=cwd), cwd))

    plain, truncated = evaluate(), evaluate("truncation=0.3")
    assert truncated["protocol"]["truncation"] == 0.3 and "truncation" not in plain["protocol"]
    assert truncated["fid"] != plain["fid"]


@pytest.mark.parametrize("run, message", [
    ("flow", "truncation=0.5: this FlowModule has no truncation trick .*drop truncation="),
    ("uniform", r"truncation=0.5: this GAN draws uniform noise \(model.latent=uniform\).*drop truncation="),
])
@pytest.mark.parametrize("command", ["sample", "eval"])
def test_models_without_it_refuse_truncation_in_one_line(runs, run, message, command):
    cwd, ckpt = runs
    proc = run_cli(command, f"ckpt_path={ckpt[run]}", "truncation=0.5", cwd=cwd, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
