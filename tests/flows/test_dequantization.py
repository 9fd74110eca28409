"""Dequantization (uniform; variational, Flow++ sec. 3.1) and the importance-weighted bound: q(v|x) is a
normalised density with the right Jacobian, the uniform path is unchanged, the bound tightens with
the number of draws toward the exact discrete log-likelihood, and train -> eval runs end to end."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import FAST, read_metrics, run_cli, run_directory

from gen_runner.data.images import dequantize
from gen_runner.errors import UserError
from gen_runner.flows.dequantization import (
    UniformDequantization,
    VariationalDequantization,
)
from gen_runner.flows.module import FlowModule
from gen_runner.flows.realnvp import realnvp_image
from gen_runner.metrics.likelihood import likelihood
from gen_runner.tasks.evaluate import evaluate
from gen_runner.tasks.train import train

CPU = torch.device("cpu")
SMALL_Q = {"num_couplings": 2, "hidden_channels": 8, "num_blocks": 1}


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: one thread is faster than several contending for shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturb(module: torch.nn.Module, std: float) -> torch.nn.Module:
    """Random parameters, so that the zero-initialised couplings are not the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn_like(p))
    return module


def small_q(shape, levels, dtype=torch.float32) -> VariationalDequantization:
    torch.manual_seed(0)
    return perturb(VariationalDequantization(shape, levels, **SMALL_Q).to(dtype), std=0.1).eval()


def flow_module(dequantization: str, shape=(1, 4, 4), levels: int = 17) -> FlowModule:
    def flow(data_shape):
        return realnvp_image(data_shape, num_scales=1, hidden_channels=8, num_blocks=1)

    torch.manual_seed(0)
    model = FlowModule(flow, {"shape": list(shape), "num_levels": levels}, dequantization=dequantization,
                       variational=SMALL_Q)
    return perturb(model, std=0.05).eval()


def pixels(n: int, shape, levels: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, levels, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_variational_logabsdet_matches_autograd(jacobian_logabsdet):
    q = small_q((1, 2, 2), 5, torch.float64)
    x = pixels(3, (1, 2, 2), 5).double()
    eps = torch.randn(3, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    v, logabsdet = q(eps, x)
    torch.testing.assert_close(logabsdet, jacobian_logabsdet(lambda e: q(e, x)[0], eps))
    assert ((v > 0) & (v < 1)).all()


def test_variational_density_integrates_to_one_over_the_unit_square():
    q = small_q((1, 1, 2), 3, torch.float64)
    n = 300
    centres = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    v = torch.cartesian_prod(centres, centres).view(-1, 1, 1, 2)
    x = torch.tensor([2.0, 0.0], dtype=torch.float64).expand(len(v), 1, 1, 2)
    with torch.no_grad():  # v -> eps by inverting the sigmoid and the couplings, then log q by the module
        eps = q.couplings.inverse(torch.logit(v), q.context(x / 3 - 0.5))[0]
        v_again, logabsdet = q(eps, x)
        log_q = q.base.log_prob(eps) - logabsdet
    torch.testing.assert_close(v_again, v)
    assert math.isclose(log_q.exp().sum().item() / n**2, 1.0, abs_tol=2e-3)
    logit_normal = (q.base.log_prob(torch.logit(v)) - (torch.log(v) + torch.log1p(-v)).flatten(1).sum(1))
    assert (log_q - logit_normal).abs().max() > 0.1  # q is not its initial logit-normal


@pytest.mark.parametrize("kind", ["uniform", "variational"])
def test_sample_noise_lies_in_each_pixels_bin(kind: str):
    shape, levels = (1, 4, 4), 17
    dequantizer = UniformDequantization(levels) if kind == "uniform" else small_q(shape, levels)
    x = pixels(64, shape, levels)
    with torch.no_grad():
        u, log_q = dequantizer.sample(x, torch.Generator().manual_seed(3))
        again = dequantizer.sample(x, torch.Generator().manual_seed(3))
    v = u * levels - x
    assert u.dtype == torch.float32 and log_q.shape == (64,) and torch.isfinite(log_q).all()
    assert ((v > -1e-5) & (v < 1 + 1e-5)).all()  # u = (x + v) / K, up to float rounding
    torch.testing.assert_close(again, (u, log_q), rtol=0, atol=0)
    if kind == "uniform":
        assert (log_q == 0).all()
    else:
        eps = dequantizer.base.sample(64, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            torch.testing.assert_close(log_q, dequantizer.base.log_prob(eps) - dequantizer(eps, x)[1])
        assert log_q.std() > 0.1


def test_uniform_path_is_unchanged():
    model = flow_module("uniform")
    x = pixels(8, (1, 4, 4), 17)
    with torch.no_grad():
        got = model.log_prob(x, torch.Generator().manual_seed(5))
        u = dequantize(x.float(), 17, generator=torch.Generator().manual_seed(5))
        expected = model.flow.log_prob(u) - 16 * math.log(17)
    assert torch.equal(got, expected)
    assert list(model.dequantizer.parameters()) == [] and all(k.startswith("flow.") for k in model.state_dict())


@pytest.mark.parametrize("kind", ["uniform", "variational"])
def test_importance_weighted_bound_tightens_with_draws(kind: str):
    model = flow_module(kind)
    loader = [(pixels(32, (1, 4, 4), 17, seed=i),) for i in range(2)]
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        plain = torch.cat([model.log_prob(b[0], generator) for b in loader])
    bounds = {s: likelihood(model, loader, CPU, seed=0, iw_samples=s) for s in (1, 8, 32)}
    assert bounds[1]["nll"] == pytest.approx(-plain.double().mean().item(), rel=1e-12)
    assert bounds[1]["bpd"] > bounds[8]["bpd"] > bounds[32]["bpd"]
    assert bounds[32]["num_examples"] == 64


@pytest.mark.parametrize("kind", ["uniform", "variational"])
def test_importance_weighted_bound_approaches_the_discrete_likelihood(kind: str):
    """2-pixel images with 2 levels: log P(x) = log of p(u) integrated over x's bin, by a fine grid.
    The plain bound (the mean of single-draw bounds) lies below it; the IW bound of 4096 draws
    meets it under uniform noise (bounded weights). This untrained q is near a logit-normal, whose
    density vanishes at the bin edges where p's does not: the weights are heavy-tailed and the IW
    bound converges slowly (one draw in 4096 can carry ~1% of the weight), hence the loose check."""
    shape, levels, n, draws = (1, 1, 2), 2, 200, 4096
    model = flow_module(kind, shape, levels)
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.uint8).view(4, 1, 1, 2)
    centres = (torch.arange(n) + 0.5) / n
    grid = torch.cartesian_prod(centres, centres).view(-1, 1, 1, 2)
    with torch.no_grad():
        exact = torch.stack([model.flow.log_prob((xi + grid) / levels).logsumexp(0) - math.log(n**2 * levels**2)
                             for xi in x.float()])
        single = model.log_prob(x.repeat(draws, 1, 1, 1), torch.Generator().manual_seed(0)).view(draws, 4)
    plain, weighted = single.mean(0), single.logsumexp(0) - math.log(draws)
    assert (plain < exact - 0.1).all()
    if kind == "uniform":
        torch.testing.assert_close(weighted, exact, atol=0.01, rtol=0)
    else:
        assert (weighted > plain + 0.1).all() and ((weighted - exact).abs() < 0.15).all()


def test_variational_rejects_points_and_unknown_names(make_config):
    message = r"^model=realnvp: dequantization=variational applies to images .* points of shape \(2,\)"
    with pytest.raises(UserError, match=message):
        train(make_config("train", "model=realnvp", "data=ring8", "model.dequantization=variational", *FAST))
    with pytest.raises(ValueError, match="unknown dequantization 'gaussian'; choose one of uniform, variational"):
        FlowModule(lambda data_shape: None, {"shape": [1, 4, 4], "num_levels": 2}, dequantization="gaussian")


def test_train_variational_on_digits_then_eval_importance_weighted(make_config, tmp_path):
    small = ["model.flow.image.num_scales=1", "model.flow.image.hidden_channels=8", "model.flow.image.num_blocks=1",
             "model.variational.hidden_channels=8", "model.variational.num_blocks=1"]
    cfg = make_config("train", "model=realnvp", "data=digits", "data.batch_size=32", "model.dequantization=variational",
                      *small, "trainer.max_steps=6", "trainer.val_check_interval=3", "trainer.limit_val_batches=1",
                      *FAST)
    metrics = train(cfg)
    assert math.isfinite(metrics["val/bpd"])
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    assert any(k.startswith("dequantizer.") for k in torch.load(ckpt, weights_only=True)["state_dict"])
    proc = run_cli("eval", f"ckpt_path={ckpt}", "eval.iw_samples=4", cwd=tmp_path)
    ev = read_metrics(run_directory(proc, tmp_path))
    assert 0 < ev["bpd"] < math.log2(17) + 1 and ev["bpd"] == pytest.approx(ev["nll"] / (64 * math.log(2)))
    assert ev["protocol"]["iw_samples"] == 4 and ev["protocol"]["dequantization"] == "variational"
    with pytest.raises(UserError, match="eval.iw_samples=0: pass at least 1"):
        evaluate(make_config("eval", f"ckpt_path={ckpt}", "eval.iw_samples=0"))
