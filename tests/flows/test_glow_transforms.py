"""Glow's layers (Kingma & Dhariwal 2018): ActNorm's data-dependent initialization and its persistence,
invertible 1x1 convolutions (plain and LU), permutations, the coupling network and the learned split
prior; NICE's scaling layer (Dinh et al. 2015); and their CASES for the contract loop of
test_transforms.py."""
from __future__ import annotations

import io
import math

import pytest
import torch
from layers import channel_data, initialized, perturb
from torch.distributions import Normal

from gen_runner.flows.transforms.base import Transform
from gen_runner.flows.transforms.coupling import Coupling
from gen_runner.flows.transforms.elementwise import Scale
from gen_runner.flows.transforms.linear import InvertibleConv1x1, Permutation
from gen_runner.flows.transforms.normalization import ActNorm
from gen_runner.flows.transforms.univariate import Affine
from gen_runner.nets import actnorm
from gen_runner.nets.glow import GlowConditioner, GlowPrior


def through_bytes(state_dict: dict) -> dict:
    """A state dict saved with torch.save and loaded back with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_logabsdets_match_autograd(transform: Transform, x: torch.Tensor, jacobian_logabsdet) -> None:
    y, forward_logabsdet = transform(x)
    torch.testing.assert_close(forward_logabsdet, jacobian_logabsdet(lambda v: transform(v)[0], x))
    x_again, inverse_logabsdet = transform.inverse(y)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, jacobian_logabsdet(lambda v: transform.inverse(v)[0], y))


SHAPES = [(3,), (3, 4, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_actnorm_initializes_on_first_training_forward(shape: tuple[int, ...]):
    torch.manual_seed(0)
    actnorm = ActNorm(3).double().train()
    x = channel_data(32, shape, torch.float64).requires_grad_()
    dims = [0, *range(2, x.dim())]
    y, logabsdet = actnorm(x)
    assert actnorm.initialized
    torch.testing.assert_close(y.mean(dims), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(y.std(dims, correction=0), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    spatial = math.prod(shape[1:])
    expected = -spatial * torch.log(x.detach().std(dims, correction=0) + actnorm.eps).sum()
    torch.testing.assert_close(logabsdet, expected.expand(32))
    # no gradient through the initialization: dy/dx is the (constant) per-channel scale
    y.sum().backward()
    view = (1, 3) + (1,) * (len(shape) - 1)
    torch.testing.assert_close(x.grad, torch.exp(actnorm.log_scale.detach()).view(view).expand_as(x))
    # a second training forward, on other data, does not re-initialize
    state = {k: v.clone() for k, v in actnorm.state_dict().items()}
    actnorm(channel_data(32, shape, torch.float64) + 5.0)
    for key, value in actnorm.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)


def test_actnorm_is_identity_until_initialized():
    actnorm = ActNorm(2)
    x = torch.randn(4, 2, 3, 3)
    # evaluated left to right: eval-mode forward and inverse, then a training-mode inverse
    for y, logabsdet in (actnorm.eval()(x), actnorm.inverse(x), actnorm.train().inverse(x)):
        torch.testing.assert_close(y, x, atol=0, rtol=0)
        torch.testing.assert_close(logabsdet, torch.zeros(4), atol=0, rtol=0)
    assert not actnorm.initialized
    actnorm.train()(x)
    assert actnorm.initialized


def test_actnorm_state_dict_round_trip_does_not_reinitialize():
    torch.manual_seed(0)
    actnorm = initialized(ActNorm(3), (3, 4, 4))
    state = through_bytes(actnorm.state_dict())
    assert state["initialized"].item()
    fresh = ActNorm(3)
    fresh.load_state_dict(state)
    assert fresh.initialized
    x = channel_data(8, (3, 4, 4)) * 4.0
    y, logabsdet = fresh.train()(x)
    torch.testing.assert_close(fresh.bias, actnorm.bias, atol=0, rtol=0)
    torch.testing.assert_close(fresh.log_scale, actnorm.log_scale, atol=0, rtol=0)
    y_saved, logabsdet_saved = actnorm.train()(x)
    torch.testing.assert_close(y, y_saved, atol=0, rtol=0)
    torch.testing.assert_close(logabsdet, logabsdet_saved, atol=0, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_actnorm_logabsdet_matches_autograd(shape: tuple[int, ...], jacobian_logabsdet):
    torch.manual_seed(0)
    actnorm = perturb(initialized(ActNorm(3), shape).double().eval())
    assert_logabsdets_match_autograd(actnorm, channel_data(2, shape, torch.float64), jacobian_logabsdet)


@pytest.mark.parametrize("lu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_conv1x1_is_the_dense_matrix(lu: bool, shape: tuple[int, ...]):
    torch.manual_seed(0)
    conv = perturb(InvertibleConv1x1(3, lu=lu).double())
    x = torch.randn(5, *shape, dtype=torch.float64)
    y, logabsdet = conv(x)
    matrix = conv.matrix()
    torch.testing.assert_close(y, torch.einsum("ij,bj...->bi...", matrix, x))
    spatial = math.prod(shape[1:])
    torch.testing.assert_close(logabsdet, (spatial * torch.linalg.slogdet(matrix)[1]).expand(5))
    x_again, inverse_logabsdet = conv.inverse(y)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)


def test_conv1x1_lu_starts_from_the_same_rotation():
    dense = InvertibleConv1x1(5, seed=3).matrix()
    torch.testing.assert_close(dense @ dense.T, torch.eye(5))
    torch.testing.assert_close(InvertibleConv1x1(5, lu=True, seed=3).matrix(), dense)
    torch.manual_seed(0)
    assert not torch.allclose(InvertibleConv1x1(5).matrix(), InvertibleConv1x1(5).matrix())


@pytest.mark.parametrize("lu", [False, True])
@pytest.mark.parametrize("shape", [(2, 2, 2), (3,)])
def test_conv1x1_logabsdet_matches_autograd(lu: bool, shape: tuple[int, ...], jacobian_logabsdet):
    torch.manual_seed(0)
    conv = perturb(InvertibleConv1x1(shape[0], lu=lu).double())
    assert_logabsdets_match_autograd(conv, torch.randn(3, *shape, dtype=torch.float64), jacobian_logabsdet)


@pytest.mark.parametrize("kind", ["reverse", "shuffle"])
@pytest.mark.parametrize("shape", SHAPES)
def test_permutation_round_trip(kind: str, shape: tuple[int, ...]):
    permutation = Permutation.reverse(3) if kind == "reverse" else Permutation.shuffle(3, seed=0)
    x = torch.randn(4, *shape)
    y, logabsdet = permutation(x)
    torch.testing.assert_close(y, x[:, permutation.index], atol=0, rtol=0)
    x_again, inverse_logabsdet = permutation.inverse(y)
    torch.testing.assert_close(x_again, x, atol=0, rtol=0)
    assert not logabsdet.any() and not inverse_logabsdet.any()


def test_permutation_layout_and_state_dict():
    torch.testing.assert_close(Permutation.reverse(4)(torch.arange(4.0)[None])[0], torch.tensor([[3.0, 2.0, 1.0, 0.0]]))
    saved = Permutation.shuffle(16, seed=1)
    torch.testing.assert_close(saved.index, Permutation.shuffle(16, seed=1).index)
    fresh = Permutation.shuffle(16, seed=2)
    assert not torch.equal(fresh.index, saved.index)
    fresh.load_state_dict(through_bytes(saved.state_dict()))
    x = torch.randn(3, 16)
    torch.testing.assert_close(fresh(x)[0], saved(x)[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match="not a permutation"):
        Permutation(torch.tensor([0, 0, 1]))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 3)])
def test_scale(shape: tuple[int, ...], jacobian_logabsdet):
    scale = Scale(shape)
    x = torch.randn(2, *shape, dtype=torch.float64)
    torch.testing.assert_close(scale(x.float())[0], x.float(), atol=0, rtol=0)
    torch.manual_seed(0)
    assert_logabsdets_match_autograd(perturb(scale.double(), 0.5), x, jacobian_logabsdet)


def test_glow_conditioner_starts_at_zero():
    torch.manual_seed(0)
    net = GlowConditioner(4, 8, hidden_channels=6)
    out = net(channel_data(5, (4, 3, 3)))
    assert out.shape == (5, 8, 3, 3)
    torch.testing.assert_close(out, torch.zeros_like(out), atol=0, rtol=0)
    actnorms = [m for m in net.modules() if isinstance(m, actnorm.ActNorm)]
    assert len(actnorms) == 2 and all(m.initialized for m in actnorms)


def test_glow_prior_is_the_gaussian_log_density():
    torch.manual_seed(0)
    prior = GlowPrior(2, 3)
    split = Coupling(torch.zeros(3, 4, 4, dtype=torch.bool), prior, Affine("exp")).double()
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    context = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    z, logabsdet = split(x, context)
    torch.testing.assert_close(z, x, atol=0, rtol=0)  # the standard normal at initialization
    perturb(prior, 0.3)
    z, logabsdet = split(x, context)
    mean, log_std = prior.mean_log_std(context)
    assert mean.abs().min() > 0 and log_std.abs().min() > 0
    log_prob = Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1) + logabsdet
    expected = Normal(mean, log_std.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(log_prob, expected)
    x_again, inverse_logabsdet = split.inverse(z, context)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)
