"""MADE: Masked Autoencoder for Distribution Estimation (Germain, Gregor, Murray & Larochelle 2015),
the conditioner of masked autoregressive flows (Papamakarios, Pavlakou & Murray 2017, "Masked
Autoregressive Flow for Density Estimation", sec. 3.2).

Every input i has a degree m(i) in 1..D (its position in the autoregressive order), every hidden
unit a degree in 1..D-1; a connection from a unit of degree a to a hidden unit of degree b exists
iff b >= a, and to an output of input i iff m(i) > a. Output i therefore depends on exactly the
inputs that come before i in the order. Hidden degrees cycle through 1..D-1 (deterministic, as in
the MAF code), so every degree is represented when a layer has at least D - 1 units. A context
(conditional flows) enters as inputs of degree 0, and hidden degrees then start at 0: units that
see only the context, through which the first output in the order depends on it too.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gen_runner.nets.mlp import make_activation

__all__ = ["MADE", "MaskedLinear", "autoregressive_order"]


def autoregressive_order(dim: int, order: str, layer: int = 0, seed: int = 0) -> torch.Tensor:
    """Input degrees 1..dim for the `layer`-th MADE of a stack: "sequential" (1..D every layer),
    "reverse" (alternating between 1..D and D..1, MAF's default), or "random" (a random permutation
    per layer from `seed`)."""
    if order == "sequential":
        return torch.arange(1, dim + 1)
    if order == "reverse":
        degrees = torch.arange(1, dim + 1)
        return degrees.flip(0) if layer % 2 else degrees
    if order == "random":
        generator = torch.Generator().manual_seed(seed * 100_003 + layer)
        return torch.randperm(dim, generator=generator) + 1
    raise ValueError(f"unknown autoregressive order {order!r}; choose sequential, reverse or random")


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed binary mask [out, in] (a buffer)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """[B, D] (and an optional context [B, context_features]) -> [B, out_multiplier * D], output
    j * D + i (parameter j of input i) depending only on the inputs before i in `degrees` and on
    the context, which is connected to every hidden unit. `zero_last` starts the output at zero,
    so a flow of MADE-conditioned transformers starts as the identity."""

    def __init__(self, degrees: torch.Tensor, hidden: list[int] | tuple[int, ...], out_multiplier: int,
                 context_features: int = 0, activation: str = "relu", zero_last: bool = True):
        super().__init__()
        degrees = torch.as_tensor(degrees)
        dim = degrees.numel()
        self.register_buffer("degrees", degrees.clone())
        self.context_features = context_features
        layers: list[nn.Module] = []
        previous = torch.cat([torch.zeros(context_features, dtype=torch.long), degrees])  # context: degree 0
        low = 0 if context_features else 1
        for width in hidden:
            current = torch.arange(width) % max(dim - low, 1) + low
            layers += [MaskedLinear(previous.numel(), width, current[:, None] >= previous[None, :]),
                       make_activation(activation)]
            previous = current
        out_degrees = degrees.repeat(out_multiplier)
        self.output = MaskedLinear(previous.numel(), out_multiplier * dim, out_degrees[:, None] > previous[None, :])
        self.hidden = nn.Sequential(*layers)
        if zero_last:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.context_features:
            if context is None:
                raise ValueError(f"this MADE is conditional: give a context of {self.context_features} features")
            x = torch.cat([context, x], -1)
        return self.output(self.hidden(x))
