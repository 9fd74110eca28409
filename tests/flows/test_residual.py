"""i-ResNet and Residual Flows: the Lipschitz layers against dense Jacobians, the fixed-point inverse,
the power series against slogdet, the Russian-roulette estimator's and the Neumann gradient's
unbiasedness (statistical tests, fixed seeds, explicit tolerances), and the models through the CLI
on digits (on 2-D points they run in tests/flows/test_models.py's loop)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import run_cli
from torch import nn

from gen_runner.errors import UserError
from gen_runner.flows.iresnet import residual_flow
from gen_runner.flows.transforms.residual import Residual, exact_logdet
from gen_runner.nets.lipschitz import LipSwish, SpectralConv2d, SpectralLinear


def dense_jacobian(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[B, D, D]: the Jacobian of the flattened net at each example of x."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: net(v[None]).flatten(), xi).flatten(1)
                        for xi in x])


def contraction(dim: int, norm: float, seed: int = 0) -> nn.Module:
    """g = c W^T tanh(W x + b): near 0, where the tests evaluate it, its Jacobian is about c W^T W,
    symmetric positive semi-definite of norm `norm` (its Lipschitz bound), so every term of the
    log-det's series counts."""
    torch.manual_seed(seed)
    first, second = nn.Linear(dim, 16), nn.Linear(16, dim)
    with torch.no_grad():
        first.bias.mul_(0.1)
        first.weight.div_(torch.linalg.matrix_norm(first.weight, 2))
        second.weight.copy_(norm * first.weight.T)
    return nn.Sequential(first, nn.Tanh(), second).double()


def test_spectral_layers_bound_the_lipschitz_constant():
    """Weights scaled far above the bound: after power iterations, the dense Jacobian's norm of a
    small LipSwish MLP stays below coeff at random points, and a convolution's operator norm (its
    input-domain power iteration) reaches coeff, where the reshaped kernel's norm would not."""
    torch.manual_seed(0)
    coeff = 0.9
    net = nn.Sequential(SpectralLinear(3, 32, coeff), LipSwish(), SpectralLinear(32, 3, coeff)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10)
    for _ in range(20):
        net(torch.zeros(1, 3, dtype=torch.float64))  # training forwards iterate
    net.eval()
    norms = torch.linalg.matrix_norm(dense_jacobian(net, 3 * torch.randn(64, 3, dtype=torch.float64)), 2)
    assert norms.max() < coeff
    conv = SpectralConv2d(2, 3, 3, (6, 6), coeff, init_iterations=200).double().eval()
    with torch.no_grad():
        conv.weight.mul_(10)
        conv.train()(torch.zeros(1, 2, 6, 6, dtype=torch.float64))
    conv.eval()
    operator = dense_jacobian(conv, torch.zeros(1, 2, 6, 6, dtype=torch.float64))[0]
    assert torch.linalg.matrix_norm(operator, 2) == pytest.approx(coeff, abs=1e-3)
    kernel = conv.normalized_weight().detach().flatten(1)
    assert torch.linalg.matrix_norm(kernel, 2) < coeff - 0.05  # reshaped kernel: a different norm


@pytest.mark.parametrize("shape", [(5,), (2, 4, 4)])
def test_fixed_point_inverse_round_trip(shape):
    flow = residual_flow(shape, coeff=0.9, image={"num_scales": 1, "hidden_channels": 8, "blocks": 2},
                         vector={"num_layers": 3, "hidden": [16]}).double()
    x = torch.rand(8, *shape, dtype=torch.float64) * (1 if len(shape) == 3 else 4)
    flow.train()(x)  # initialize the ActNorms
    flow.eval()
    for block in flow.modules():
        if isinstance(block, Residual):
            block.exact_max_dim = 32  # as eval.exact_logdet_max_dim=32 does
    with torch.no_grad():
        z, logdet = flow(x)
        back, inverse_logdet = flow.inverse(z)
    assert (back - x).abs().max() < 1e-5
    assert torch.allclose(logdet, -inverse_logdet, atol=1e-6)  # exact log-dets


def test_power_series_approaches_slogdet():
    """The truncated estimator (Hutchinson's trace, many probes at once) converges to slogdet of the
    autograd Jacobian as n grows; with 1 term it is visibly off."""
    torch.manual_seed(0)
    net = contraction(4, 0.8)
    x = 0.1 * torch.randn(1, 4, dtype=torch.float64)
    exact = torch.linalg.slogdet(torch.eye(4, dtype=torch.float64) + dense_jacobian(net, x)[0]).logabsdet
    many = x.expand(20000, 4)
    errors = {}
    for n in (1, 3, 30):
        torch.manual_seed(1)
        with torch.no_grad():
            estimate = Residual(net, "truncated", n_terms=n, exact_max_dim=0).eval()(many)[1]
        errors[n] = (estimate.mean() - exact).abs().item()
        se = estimate.std().item() / math.sqrt(len(many))
    assert errors[30] < 4 * se + 1e-3 and errors[1] > 10 * se and errors[1] > errors[3] > errors[30]


@pytest.mark.parametrize("dim", [2, 4, 8])
def test_russian_roulette_estimator_is_unbiased(dim):
    """The mean over 300 draws of N (and 16 probes each) lies within 4 standard errors (+ 1e-3) of
    the exact log-det; the series truncated at 2 terms does not."""
    torch.manual_seed(dim)
    net = contraction(dim, 0.6, seed=dim)
    block = Residual(net, "unbiased", n_exact_terms=2, neumann_grad=False, exact_max_dim=0).train()
    x = 0.1 * torch.randn(1, dim, dtype=torch.float64).expand(16, dim)
    with torch.no_grad():
        exact = exact_logdet(*_graph(net, x[:1]))[0].item()
        draws = torch.stack([block(x)[1].mean() for _ in range(300)])
    mean, se = draws.mean().item(), draws.std().item() / math.sqrt(len(draws))
    assert abs(mean - exact) < 4 * se + 1e-3, (mean, exact, se)
    with torch.no_grad():
        truncated = Residual(net, "truncated", n_terms=2, exact_max_dim=0).train()
        biased = torch.stack([truncated(x)[1].mean() for _ in range(300)]).mean().item()
    assert abs(biased - exact) > 4 * se + 1e-3


def _graph(net, x):
    with torch.enable_grad():
        inner = x.detach().requires_grad_()
        return net(inner), inner


def test_neumann_gradient_matches_autograd_of_exact_logdet():
    """The Neumann-series gradient wrt g's parameters, averaged over 400 draws, matches the gradient
    of the exact log-det within 4 standard errors (+ 1e-3) for every parameter entry; the value it
    returns is the unbiased estimate's."""
    torch.manual_seed(0)
    net = contraction(3, 0.6)
    x = 0.1 * torch.randn(4, 3, dtype=torch.float64)
    params = [net[0].weight, net[0].bias, net[2].weight]  # the last bias does not move the Jacobian
    g, inner = _graph(net, x)
    target = torch.cat([p.flatten() for p in torch.autograd.grad(exact_logdet(g, inner, True).sum(), params)])
    block = Residual(net, "unbiased", neumann_grad=True, exact_max_dim=0).train()
    draws = torch.stack([torch.cat([p.flatten() for p in torch.autograd.grad(block(x)[1].sum(), params)])
                         for _ in range(400)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - target).abs() < 4 * se + 1e-3).all(), (mean - target).abs().max()


def test_bad_options_say_what_to_pass():
    with pytest.raises(UserError, match=r"model.flow.coeff=1.2: .* \(0, 1\)"):
        residual_flow((2,), coeff=1.2)
    with pytest.raises(UserError, match="model.flow.block.estimator='exact': choose truncated or unbiased"):
        residual_flow((2,), block={"estimator": "exact"})
    with pytest.raises(UserError, match="geom_p=1"):
        residual_flow((2,), block={"geom_p": 1})
    with pytest.raises(UserError, match="cannot be squeezed 2 times"):
        residual_flow((1, 6, 6))


# Slow (about 3 s each): by default both models go through train -> eval -> sample on moons in
# tests/flows/test_models.py's loop, and their image architecture through the round trip above.
@pytest.mark.slow
@pytest.mark.parametrize("model", ["residual_flow", "iresnet"])
def test_cli_on_digits_trains_evaluates_and_samples(tmp_path, model):
    """A few steps on 8x8 digits with tiny nets; eval scores bits/dim with the estimator (64 > 16
    dimensions) and records the exact-log-det limit; samples come back by the fixed-point inverse."""
    sizes = ["model.flow.image.num_scales=1", "model.flow.image.blocks=1", "model.flow.image.hidden_channels=4"]
    sizes += ["model.flow.block.n_exact_terms_eval=2"] if model == "residual_flow" else []
    run_cli("train", f"model={model}", "data=digits", "trainer.max_steps=2", "data.batch_size=8",
            "trainer.limit_val_batches=1", "callbacks=minimal", "logger=csv", *sizes, cwd=tmp_path)
    ckpt = next(tmp_path.glob("outputs/train/*/*/checkpoints/last.ckpt"))
    run_cli("eval", f"ckpt_path={ckpt}", "eval.split=val", cwd=tmp_path)
    metrics = json.loads(next(tmp_path.glob("outputs/eval/*/*/metrics.json")).read_text())
    assert math.isfinite(metrics["bpd"]) and metrics["protocol"]["exact_logdet_max_dim"] == 16
    run_cli("sample", f"ckpt_path={ckpt}", "num_samples=4", cwd=tmp_path)
    samples = torch.load(next(tmp_path.glob("outputs/sample/*/*/samples/samples.pt")), weights_only=True)
    assert samples.shape == (4, 1, 8, 8) and torch.isfinite(samples).all()
