"""Multilayer perceptrons shared by GANs (2-D and flattened images) and flow conditioners."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.minibatch import MinibatchDiscrimination, MinibatchStdDev

__all__ = ["MLP", "Maxout", "hidden_layers", "make_activation", "normal_init", "MLPGenerator", "MLPDiscriminator"]


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over `pieces` affine maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5, bias: bool = True):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces).amax(-1)


def normal_init(module: nn.Module, std: float) -> None:
    """Weights of every linear layer from N(0, std), biases zero."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def make_activation(name: str) -> nn.Module:
    """An activation module by name: relu, leaky_relu (slope 0.2, as DCGAN), tanh, elu, gelu, silu, softplus."""
    table = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "softplus": nn.Softplus,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(table)}")
    return table[name]()


def hidden_layers(in_features: int, hidden: Sequence[int], activation: str = "relu", batch_norm: bool = False,
                  dropout: float = 0.0, bias: bool = True, pieces: int = 5) -> list[nn.Module]:
    """The hidden part of an MLP: linear (or maxout) layers, each with its activation."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        if activation == "maxout":
            layers.append(Maxout(width, h, pieces, bias=bias))
        else:
            layers.append(nn.Linear(width, h, bias=bias and not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    return layers


class MLP(nn.Sequential):
    """Linear layers with an activation (or maxout units) between them.

    `batch_norm` adds BatchNorm1d after each hidden linear layer; `dropout` drops hidden units;
    `zero_last` initialises the output layer to zero, so a flow conditioner starts at the identity.
    `activation="maxout"` builds each hidden layer as a maxout unit with `pieces` pieces.
    `bias=False` drops the hidden layers' biases (the output layer keeps one); `init_std` draws
    every weight from N(0, init_std) with zero biases (PacGAN's 0.02) instead of PyTorch's default.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        pieces: int = 5,
        zero_last: bool = False,
        init_std: float | None = None,
    ):
        last = nn.Linear(hidden[-1] if hidden else in_features, out_features)
        super().__init__(*hidden_layers(in_features, hidden, activation, batch_norm, dropout, bias, pieces), last)
        if init_std is not None:
            normal_init(self, init_std)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)


class MLPGenerator(nn.Module):
    """z -> an example of `data_shape`: linear output for points, tanh for images in [-1, 1]."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 activation: str = "relu", batch_norm: bool = False, bias: bool = True,
                 init_std: float | None = None):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.net = MLP(latent_dim, math.prod(self.data_shape), hidden, activation, batch_norm, bias=bias,
                       init_std=init_std)
        self.out = nn.Tanh() if len(self.data_shape) == 3 else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z)).view(len(z), *self.data_shape)


class MLPDiscriminator(nn.Module):
    """An example (flattened) -> one logit per example.

    `minibatch="discrimination"` (B = `num_kernels`, C = `kernel_dim`) or `"stddev"` inserts a
    minibatch layer (gen_runner/nets/minibatch.py) between the last hidden layer and the output."""

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 activation: str = "leaky_relu", dropout: float = 0.0, pieces: int = 5,
                 init_std: float | None = None, minibatch: str | None = None, num_kernels: int = 100,
                 kernel_dim: int = 5):
        super().__init__()
        self.body = nn.Sequential(*hidden_layers(math.prod(data_shape), hidden, activation, dropout=dropout,
                                                 pieces=pieces))
        if minibatch == "discrimination":
            self.minibatch = MinibatchDiscrimination(hidden[-1], num_kernels, kernel_dim)
        elif minibatch == "stddev":
            self.minibatch = MinibatchStdDev()
        elif minibatch is None:
            self.minibatch = nn.Identity()
        else:
            raise ValueError(f"minibatch={minibatch!r}: choose discrimination, stddev or null")
        width = hidden[-1] + (num_kernels if minibatch == "discrimination" else minibatch == "stddev")
        self.head = nn.Linear(width, 1)
        if init_std is not None:
            normal_init(self, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.minibatch(self.body(x.flatten(1)))).squeeze(1)
