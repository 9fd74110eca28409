"""Regularizers, packing and minibatch layers against analytic values."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gen_runner.gans.regularizers import R1, GradientPenalty, OrthogonalRegularization, apply_spectral_norm
from gen_runner.nets.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gen_runner.nets.mlp import MLP


def test_gradient_penalty_of_a_linear_critic_is_analytic():
    w = torch.tensor([3.0, 4.0])  # ||w|| = 5 everywhere
    gan = SimpleNamespace(critic=lambda x: x @ w)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert GradientPenalty(weight=10)(gan, real, fake).item() == pytest.approx(10 * (5 - 1) ** 2)


def test_gradient_penalty_interpolates_per_example_not_per_pixel():
    seen = []

    def critic(x):
        seen.append(x.detach())
        return 0.5 * (x**2).flatten(1).sum(1)

    real, fake = torch.ones(8, 1, 4, 4), torch.zeros(8, 1, 4, 4)
    penalty = GradientPenalty(weight=1.0)(SimpleNamespace(critic=critic), real, fake)
    x_hat = seen[0]
    eps = x_hat.flatten(1)[:, 0]
    assert torch.equal(x_hat, eps[:, None, None, None].expand_as(x_hat))  # one eps per example
    assert len(eps.unique()) == 8 and (0 <= eps).all() and (eps <= 1).all()
    # grad of 0.5||x||^2 is x: its norm is eps * 4 (16 pixels equal to eps)
    assert penalty.item() == pytest.approx(((4 * eps - 1) ** 2).mean().item(), rel=1e-5)


def test_r1_penalises_real_gradients_only():
    gan = SimpleNamespace(critic=lambda x: 0.5 * (x**2).sum(1))
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert R1(gamma=2.0)(gan, real, torch.zeros(2, 2) + 100).item() == pytest.approx((1 + 4) / 2)


def test_orthogonal_regularization():
    net = nn.Sequential(nn.Linear(3, 3, bias=False))
    q, _ = torch.linalg.qr(torch.randn(3, 3))
    net[0].weight.data = q
    gan = SimpleNamespace(generator=net)
    zero = torch.zeros(1)
    assert OrthogonalRegularization(beta=1.0)(gan, zero, zero).item() == pytest.approx(0.0, abs=1e-10)
    net[0].weight.data = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 2.0]])
    # W W^T off-diagonal: rows 0 and 1 have dot product 1 -> two entries of 1 -> 2
    assert OrthogonalRegularization(beta=0.5)(gan, zero, zero).item() == pytest.approx(0.5 * 2)


def test_spectral_norm_makes_the_top_singular_value_one():
    torch.manual_seed(0)
    net = apply_spectral_norm(MLP(8, 1, [32, 32]))
    for _ in range(30):  # power iterations run in training forward passes
        net(torch.randn(4, 8))
    for layer in [m for m in net.modules() if isinstance(m, nn.Linear)]:
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_minibatch_discrimination_looks_at_the_other_examples():
    layer = MinibatchDiscrimination(6, num_kernels=4, kernel_dim=3)
    h = torch.randn(5, 6)
    out = layer(h)
    assert out.shape == (5, 10) and torch.equal(out[:, :6], h)
    # o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1): j = i contributes 1, so a lone example gives 1
    assert torch.allclose(layer(h[:1])[:, 6:], torch.ones(1, 4))
    changed = h.clone()
    changed[4] += 3.0
    assert not torch.allclose(layer(changed)[0, 6:], out[0, 6:])  # example 0 sees example 4 change


def test_minibatch_stddev_appends_one_feature_or_channel():
    h = torch.randn(6, 3)
    out = MinibatchStdDev()(h)
    expected = h.std(0, unbiased=False).mean()
    assert out.shape == (6, 4) and torch.allclose(out[:, 3], expected.expand(6), atol=1e-4)
    assert MinibatchStdDev()(torch.randn(6, 2, 4, 4)).shape == (6, 3, 4, 4)
    assert math.isclose(MinibatchStdDev()(torch.ones(3, 2))[0, 2].item(), 1e-4, rel_tol=1e-3)  # sqrt(1e-8)
