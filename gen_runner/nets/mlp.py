"""Multilayer perceptrons shared by GANs (2-D and flattened images) and flow conditioners."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "Maxout", "make_activation", "MLPGenerator", "MLPDiscriminator"]


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over `pieces` affine maps."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5, bias: bool = True):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces).amax(-1)


def make_activation(name: str) -> nn.Module:
    """An activation module by name: relu, leaky_relu (slope 0.2, as DCGAN), tanh, elu, gelu, silu."""
    table = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(table)}")
    return table[name]()


class MLP(nn.Sequential):
    """Linear layers with an activation (or maxout units) between them.

    `batch_norm` adds BatchNorm1d after each hidden linear layer; `dropout` drops hidden units;
    `zero_last` initialises the output layer to zero, so a flow conditioner starts at the identity.
    `activation="maxout"` builds each hidden layer as a maxout unit with `pieces` pieces.
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
    ):
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
        last = nn.Linear(width, out_features)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)


class MLPGenerator(nn.Module):
    """z -> an example of `data_shape`: linear output for points, tanh for images in [-1, 1]."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 activation: str = "relu", batch_norm: bool = False):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.net = MLP(latent_dim, math.prod(self.data_shape), hidden, activation, batch_norm)
        self.out = nn.Tanh() if len(self.data_shape) == 3 else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z)).view(len(z), *self.data_shape)


class MLPDiscriminator(nn.Module):
    """An example (flattened) -> one logit per example."""

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 activation: str = "leaky_relu", dropout: float = 0.0, pieces: int = 5):
        super().__init__()
        self.net = MLP(math.prod(data_shape), 1, hidden, activation, dropout=dropout, pieces=pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
