"""The VAE (gen_runner/vae/module.py): the ELBO against a hand computation, the importance-weighted
bound, the KL warm-up, decoding; and every posterior through the CLI on binarised digits."""
from __future__ import annotations

import functools
import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from gen_runner.errors import UserError
from gen_runner.nets.vae import decoder, encoder
from gen_runner.vae.module import VAEModule
from gen_runner.vae.posteriors import POSTERIORS
from helpers import read_metrics, run_cli, run_directory

DATA = {"shape": [1, 4, 4], "kind": "images", "num_levels": 2, "num_classes": None, "batch_size": 4}


def tiny(posterior: str = "diagonal", **kw) -> VAEModule:
    torch.manual_seed(0)
    return VAEModule(functools.partial(encoder, hidden=[6]), functools.partial(decoder, hidden=[6]), DATA,
                     latent_dim=2, posterior=posterior, flow_length=2, num_ortho_vecs=2, num_householder=2,
                     iaf_hidden=(4,), **kw)


def binary(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 2, (n, 1, 4, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_the_elbo_of_a_diagonal_posterior_matches_a_hand_computation():
    model, x = tiny(), binary(3)
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(5))
    log_px, neg_kl = model.log_weights(x, eps[None])
    h = model.encoder(x.float())
    mean, std = model.posterior.mean(h), torch.nn.functional.softplus(model.posterior.var(h)).sqrt()
    z = mean + std * eps
    probs = torch.sigmoid(model.decoder(z)).flatten(1)
    expected_px = Bernoulli(probs=probs).log_prob(x.flatten(1).float()).sum(1)
    expected_kl = (Normal(mean, std).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)
    assert torch.allclose(log_px[0], expected_px, atol=1e-5) and torch.allclose(-neg_kl[0], expected_kl, atol=1e-5)


@pytest.mark.parametrize("posterior", ["diagonal", "sylvester_householder"])
def test_the_importance_weighted_bound_equals_the_elbo_at_one_sample_and_tightens_with_more(posterior):
    model, x = tiny(posterior), binary(64)
    elbo, iw = model.bounds(x, 1, torch.Generator().manual_seed(0))
    assert torch.allclose(elbo, iw)
    means = []
    for s in (1, 10, 100):
        elbo, iw = model.bounds(x, s, torch.Generator().manual_seed(s))
        assert (iw >= elbo - 1e-5).all() and (iw < 0).all()  # Jensen; a bound on log P(x) <= 0 (binary data)
        means.append(iw.mean().item())
    assert means[0] < means[1] < means[2]


def test_chunked_draws_give_the_bound_of_one_pass(monkeypatch):
    model, x = tiny("planar"), binary(5)
    whole = model.bounds(x, 12, torch.Generator().manual_seed(3))
    monkeypatch.setattr("gen_runner.vae.module.IW_CHUNK", 20)  # 4 samples of 5 examples per pass
    chunked = model.bounds(x, 12, torch.Generator().manual_seed(3))
    assert all(torch.allclose(a, b) for a, b in zip(whole, chunked))


def test_kl_warmup_rises_linearly_from_zero_to_one():
    model = tiny(warmup_steps=100)
    assert [model.beta(t) for t in (0, 25, 100, 500)] == [0.0, 0.25, 1.0, 1.0]
    assert tiny(warmup_steps=0).beta(0) == 1.0


def test_decoding_gives_bernoulli_means_and_temperature_scales_the_prior():
    model = tiny()
    noise = model.draw_noise(6, torch.Generator().manual_seed(0))
    images = model.decode(noise)
    assert images.shape == (6, 1, 4, 4) and 0 <= images.min() and images.max() <= 1
    assert torch.allclose(model.decode(noise, 0.5), model.decode(noise * 0.5))
    assert model.gaussian_noise and model.reconstruction(binary(3)).shape == (3, 1, 4, 4)


@pytest.mark.parametrize("side", [8, 28])
def test_the_gated_conv_nets_of_the_sylvester_paper_fit_8x8_and_28x28_images(side):
    data = dict(DATA, shape=[1, side, side])
    gated = functools.partial(encoder, kind="gated_conv"), functools.partial(decoder, kind="gated_conv")
    model = VAEModule(*gated, data, latent_dim=3, posterior="sylvester_triangular", flow_length=1)
    assert model.encoder.out_features == 256
    log_px, neg_kl = model.log_weights(torch.zeros(2, 1, side, side), torch.randn(1, 2, 3))
    assert log_px.shape == neg_kl.shape == (1, 2) and model.decode(torch.zeros(1, 3)).shape == (1, 1, side, side)
    with pytest.raises(ValueError, match="sides divisible by 4"):
        encoder([1, 10, 10], kind="gated_conv")


def test_grey_data_is_refused_in_one_line():
    with pytest.raises(UserError, match="model=vae has a Bernoulli decoder: train it on binary images"):
        VAEModule(encoder, decoder, dict(DATA, num_levels=17))


FAST = ["experiment=vae_digits", "callbacks=minimal", "trainer.max_steps=2", "data.batch_size=16",
        "model.warmup_steps=2", "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1"]


FAST_POSTERIORS = ("diagonal", "sylvester_orthogonal")  # the others run with the slow tests (about 4 s each)


@pytest.mark.parametrize("posterior", [p if p in FAST_POSTERIORS else pytest.param(p, marks=pytest.mark.slow)
                                       for p in POSTERIORS])
def test_every_posterior_trains_and_evaluates_through_the_cli(tmp_path, posterior):
    run = run_directory(run_cli("train", *FAST, f"model.posterior={posterior}", cwd=tmp_path), tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    metrics = read_metrics(run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.iw_samples=4", cwd=tmp_path),
                                         tmp_path))
    assert 0 < metrics["nll_iw"] <= metrics["neg_elbo"] < 64 * math.log(2) * 2
    assert metrics["protocol"]["posterior"] == posterior and metrics["protocol"]["iw_samples"] == 4
    if posterior == "sylvester_orthogonal":  # the sample modes, once
        for mode in ("reconstruct", "samples", "interpolate"):
            out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", f"mode={mode}", "num_samples=8",
                                        "temperature=0.8", cwd=tmp_path), tmp_path)
            assert (out / "samples" / f"{mode}.png").is_file()
        drawn = torch.load(out.parent / sorted(p.name for p in out.parent.iterdir())[0] / "samples" / "samples.pt")
        assert drawn.shape == (16, 1, 8, 8)  # reconstruct: each row of 8 followed by its reconstructions
