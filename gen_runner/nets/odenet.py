"""Time-conditioned networks f(t, z) for continuous normalizing flows, as FFJORD's (Grathwohl, Chen,
Bettencourt, Sutskever & Duvenaud 2019, "FFJORD: Free-form Continuous Dynamics for Scalable
Reversible Generative Models", app. B, and the authors' code, lib/layers/diffeq_layers/basic.py).

Each layer sees the time t (a scalar shared by the batch):
- "concatsquash": h = (W z + b) * sigmoid(w_g t + b_g) + w_b t, the gate and bias functions of t
  (the paper's toy and tabular experiments);
- "concat": h = W [t, z] + b, t appended as an input feature or channel (the paper's image models).
Linear layers for vectors [B, D], 3x3 convolutions (stride 1, padding 1) for images [B, C, H, W].
The activation sits between layers, none after the last, so f is unbounded.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.errors import UserError

__all__ = ["ACTIVATIONS", "LAYERS", "ODENet"]

ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU, "relu": nn.ReLU}
LAYERS = ("concatsquash", "concat")


class _TimeLayer(nn.Module):
    """One layer of f: a linear map or a 3x3 convolution of z, conditioned on t as `kind` says."""

    def __init__(self, dim_in: int, dim_out: int, kind: str, conv: bool):
        super().__init__()
        self.kind, self.conv = kind, conv
        extra = 1 if kind == "concat" else 0
        self.layer = nn.Conv2d(dim_in + extra, dim_out, 3, padding=1) if conv else nn.Linear(dim_in + extra, dim_out)
        if kind == "concatsquash":
            self.gate = nn.Linear(1, dim_out)
            self.bias = nn.Linear(1, dim_out, bias=False)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            tt = t.to(z).expand(*z.shape[:1], 1, *z.shape[2:])
            return self.layer(torch.cat([tt, z], 1))
        t = t.to(z).reshape(1, 1)
        shape = (1, -1, 1, 1) if self.conv else (1, -1)
        return self.layer(z) * torch.sigmoid(self.gate(t)).view(shape) + self.bias(t).view(shape)


class ODENet(nn.Module):
    """f(t, z) of the same shape as z: `hidden` widths (units for vectors, channels for images) of
    time-conditioned `layer`s with `activation` between them.

    `shape`: z's event shape, (D,) or (C, H, W)."""

    def __init__(self, shape: Sequence[int], hidden: Sequence[int] = (64, 64, 64), activation: str = "tanh",
                 layer: str = "concatsquash"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserError(f"ODE net activation {activation!r}: choose {', '.join(ACTIVATIONS)}")
        if layer not in LAYERS:
            raise UserError(f"ODE net layer {layer!r}: choose {', '.join(LAYERS)}")
        if not hidden or min(hidden) < 1:
            raise UserError(f"ODE net hidden={list(hidden)}: give at least one positive width")
        conv = len(shape) == 3
        dims = [shape[0], *hidden, shape[0]]
        self.layers = nn.ModuleList(_TimeLayer(a, b, layer, conv) for a, b in zip(dims[:-1], dims[1:]))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            z = layer(t, z)
            if i < len(self.layers) - 1:
                z = self.activation(z)
        return z
