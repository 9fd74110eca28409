"""Lipschitz-constrained layers for invertible residual networks: spectral normalization by power
iteration, soft as in i-ResNet (Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen 2019, "Invertible
Residual Networks", sec. 3 and algorithm 2: W / max(1, sigma / c), so that ||W||_2 <= c), for linear
maps and for convolutions, whose power iteration runs on the convolution operator in the input
domain (an image-shaped vector, the convolution and its transpose), not on the reshaped kernel; and
LipSwish (Chen, Behrmann, Duvenaud & Jacobsen 2019, "Residual Flows for Invertible Generative
Modeling", sec. 4.2), x sigmoid(beta x) / 1.1, a smooth activation of Lipschitz constant <= 1.

The power iteration's vectors persist between steps (buffers): `n_iterations` iterations per
training forward refine them as the weight changes (i-ResNet's code: 5); out of training the stored
vectors give sigma without iterating, so evaluation is deterministic. Construction runs
`init_iterations` first, so that even an untrained layer is normalised with a converged estimate.
Power iteration approaches sigma from below: the constraint holds up to its convergence.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LipSwish", "SpectralConv2d", "SpectralLinear"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


class _SpectralNormalized(nn.Module):
    """A linear operator W (`operator`, its adjoint `transpose`) used as W / max(1, sigma(W) / coeff),
    sigma by power iteration on the buffers `u` (input domain) and `v` (output domain)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, input_shape: Sequence[int], coeff: float,
                 n_iterations: int, init_iterations: int):
        super().__init__()
        if not 0 < coeff:
            raise ValueError(f"coeff={coeff}: the Lipschitz bound must be positive")
        if n_iterations < 1:
            raise ValueError(f"n_iterations={n_iterations}: power iteration needs at least one iteration per step")
        self.coeff, self.n_iterations = coeff, n_iterations
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)
        u = _unit(torch.randn(*input_shape))
        self.register_buffer("u", u)
        self.register_buffer("v", _unit(self.operator(weight, u[None])[0]))
        self._power_iteration(init_iterations)

    def operator(self, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def transpose(self, weight: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def _power_iteration(self, n: int) -> None:
        u = self.u
        for _ in range(n):
            v = _unit(self.operator(self.weight, u[None])[0])
            u = _unit(self.transpose(self.weight, v[None])[0])
        if n:
            self.u.copy_(u)
            self.v.copy_(_unit(self.operator(self.weight, u[None])[0]))

    def sigma(self) -> torch.Tensor:
        """v^T W u, the power iteration's estimate of ||W||_2, differentiable in W (the vectors fixed)."""
        # clones: a later training forward updates the buffers in place before this graph's backward
        return (self.v.clone() * self.operator(self.weight, self.u.clone()[None])[0]).sum()

    def normalized_weight(self) -> torch.Tensor:
        if self.training:
            self._power_iteration(self.n_iterations)
        return self.weight / torch.clamp(self.sigma() / self.coeff, min=1.0)


class SpectralLinear(_SpectralNormalized):
    """A linear layer [B, in] -> [B, out] with ||W||_2 <= coeff."""

    def __init__(self, in_features: int, out_features: int, coeff: float = 0.97, n_iterations: int = 5,
                 init_iterations: int = 50):
        layer = nn.Linear(in_features, out_features)
        super().__init__(layer.weight.data, layer.bias.data, (in_features,), coeff, n_iterations, init_iterations)

    def operator(self, weight, x):
        return x @ weight.T

    def transpose(self, weight, y):
        return y @ weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class SpectralConv2d(_SpectralNormalized):
    """A stride-1 'same' convolution [B, in, H, W] -> [B, out, H, W] with operator norm <= coeff on
    inputs of spatial size `size` (the norm of a padded convolution depends on it), by power
    iteration on [in, H, W] vectors through the convolution and its transpose (i-ResNet, sec. 3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, size: Sequence[int],
                 coeff: float = 0.97, n_iterations: int = 5, init_iterations: int = 50):
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size}: 'same' convolutions need an odd kernel")
        self.padding = kernel_size // 2
        layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=self.padding)
        super().__init__(layer.weight.data, layer.bias.data, (in_channels, *size), coeff, n_iterations,
                         init_iterations)

    def operator(self, weight, x):
        return F.conv2d(x, weight, padding=self.padding)

    def transpose(self, weight, y):
        return F.conv_transpose2d(y, weight, padding=self.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class LipSwish(nn.Module):
    """x * sigmoid(beta x) / 1.1 with beta = softplus(b) > 0 learned (b = 0.5 at first, as the
    Residual Flows code); Swish's derivative is at most ~1.1 for any beta, hence Lipschitz <= 1."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(F.softplus(self.b) * x) / 1.1


ACTIVATIONS = {"elu": nn.ELU, "lipswish": LipSwish}


def activation(name: str) -> nn.Module:
    """`elu` (i-ResNet) or `lipswish` (Residual Flows): 1-Lipschitz activations."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}: choose {' or '.join(ACTIVATIONS)} (1-Lipschitz)")
    return ACTIVATIONS[name]()
