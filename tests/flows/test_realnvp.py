"""RealNVP builders: a normalised density, sampling, gradients, and the multi-scale image flow."""
from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from gen_runner.flows.build import flow as build_flow
from gen_runner.flows.build import vector_flow
from gen_runner.flows.flow import Flow
from gen_runner.flows.realnvp import realnvp_image
from gen_runner.flows.structures import coupling
from gen_runner.flows.transforms.normalization import BatchNorm


def realnvp_mlp(dim: int, num_layers: int = 8, hidden=(32, 32), batch_norm: bool = False) -> Flow:
    """RealNVP on vectors as configs/model/realnvp.yaml builds it."""
    return vector_flow(dim, structure=partial(coupling, tanh_scale=True), num_layers=num_layers, hidden=hidden,
                       normalization=BatchNorm if batch_norm else None)


def perturb(flow: Flow, std: float) -> Flow:
    """Random parameters, so that the zero-initialised couplings are not the identity."""
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(std * torch.randn_like(p))
    return flow


def fit_batch_norm_statistics(flow: Flow, x: torch.Tensor) -> Flow:
    """One training-mode pass to give the batch-norm layers non-trivial running statistics; eval mode."""
    flow.train()
    with torch.no_grad():
        flow(x)
    return flow.eval()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_density_integrates_to_one(batch_norm: bool):
    torch.manual_seed(0)
    flow = perturb(realnvp_mlp(2, hidden=(32, 32), batch_norm=batch_norm).double(), std=0.1)
    flow = fit_batch_norm_statistics(flow, torch.randn(256, 2, dtype=torch.float64))
    n, low, high = 400, -6.0, 6.0
    step = (high - low) / n
    centres = low + step * (torch.arange(n, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        log_prob = flow.log_prob(grid)
    assert math.isclose(log_prob.exp().sum().item() * step**2, 1.0, abs_tol=0.01)
    gaussian = -0.5 * (grid**2).sum(1) - math.log(2 * math.pi)
    assert (log_prob - gaussian)[grid.norm(dim=1) < 2].abs().max() > 0.1  # the model is not N(0, I)


def test_mlp_sample_and_temperature():
    torch.manual_seed(0)
    flow = perturb(realnvp_mlp(3, num_layers=4, hidden=(16,)), std=0.1).eval()
    with torch.no_grad():
        samples = flow.sample(50)
        assert samples.shape == (50, 3) and torch.isfinite(samples).all()
        first = flow.sample(5, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(flow.sample(5, generator=torch.Generator().manual_seed(1)), first)
        cold = flow.sample(4, temperature=0.0)
        mode, _ = flow.inverse(torch.zeros(1, 3))
    torch.testing.assert_close(cold, mode.expand(4, 3))


def test_mlp_gradients_reach_every_parameter():
    torch.manual_seed(0)
    flow = perturb(realnvp_mlp(4, num_layers=4, hidden=(16, 16), batch_norm=True), std=0.1).train()
    (-flow.log_prob(torch.randn(32, 4)).mean()).backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mlp_rejects_one_dimension():
    with pytest.raises(ValueError, match="at least 2"):
        realnvp_mlp(1)


def small_image_flow(shape: tuple[int, int, int], num_scales: int, dtype: torch.dtype = torch.float32) -> Flow:
    torch.manual_seed(0)
    flow = realnvp_image(shape, num_scales, hidden_channels=8, num_blocks=1, normalization=BatchNorm)
    flow = perturb(flow.to(dtype), std=0.05)
    return fit_batch_norm_statistics(flow, torch.rand(16, *shape, dtype=dtype))


@pytest.mark.parametrize(
    ("shape", "num_scales"), [((1, 8, 8), 2), ((1, 28, 28), 2), ((1, 28, 28), 3), ((3, 4, 4), 1)]
)
def test_image_round_trip_and_sample(shape: tuple[int, int, int], num_scales: int):
    flow = small_image_flow(shape, num_scales)
    x = torch.rand(4, *shape)
    with torch.no_grad():
        z, logabsdet = flow(x)
        x_again, inverse_logabsdet = flow.inverse(z)
        log_prob = flow.log_prob(x)
        samples = flow.sample(3)
    assert z.shape == (4, math.prod(shape)) and log_prob.shape == (4,)
    assert torch.isfinite(z).all() and torch.isfinite(log_prob).all()
    torch.testing.assert_close(x_again, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet, atol=1e-3, rtol=1e-5)
    assert samples.shape == (3, *shape) and torch.isfinite(samples).all()


@pytest.mark.parametrize("num_scales", [1, 2])
def test_image_logabsdet_matches_autograd(num_scales: int, jacobian_logabsdet):
    flow = small_image_flow((1, 4, 4), num_scales, torch.float64)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    z, logabsdet = flow(x)
    torch.testing.assert_close(logabsdet, jacobian_logabsdet(lambda v: flow(v)[0], x))
    _, inverse_logabsdet = flow.inverse(z)
    torch.testing.assert_close(inverse_logabsdet, jacobian_logabsdet(lambda v: flow.inverse(v)[0], z))


def test_image_without_logit_takes_real_inputs():
    torch.manual_seed(0)
    flow = realnvp_image((1, 8, 8), hidden_channels=8, num_blocks=1, logit_alpha=None).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(flow.log_prob(x), flow.base.log_prob(x.flatten(1)))  # identity at init


@pytest.mark.parametrize(("shape", "num_scales"), [((1, 7, 7), 2), ((1, 28, 28), 4), ((1, 8, 8), 0)])
def test_image_rejects_unsqueezable_shapes(shape: tuple[int, int, int], num_scales: int):
    with pytest.raises(ValueError):
        realnvp_image(shape, num_scales)


def test_build_dispatches_on_data_shape():
    vector = build_flow(data_shape=(2,), vector={"num_layers": 3, "hidden": [8]}, image={"num_scales": 5})
    assert vector.sample(4).shape == (4, 2) and len(vector.transform.transforms) == 3
    image = build_flow(data_shape=(1, 8, 8), image={"layout": "realnvp", "hidden_channels": 4, "num_blocks": 1})
    assert image.eval().sample(2).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="vectors"):
        build_flow(data_shape=(2, 3))
