"""Masked autoregressive transforms (Papamakarios, Pavlakou & Murray 2017, "Masked Autoregressive
Flow for Density Estimation"; Kingma et al. 2016, "Improved Variational Inference with Inverse
Autoregressive Flow"): each dimension transformed by a univariate transformer whose parameters a
MADE computes from the dimensions before it.

`MaskedAutoregressive` is MAF's layer: the normalizing (density) direction takes one MADE pass,
sampling takes one pass per dimension. `Inverse(MaskedAutoregressive(...))` is IAF's: sampling in
one pass, density in D passes.
"""
from __future__ import annotations

import torch

from gen_runner.flows.transforms.base import Transform
from gen_runner.flows.transforms.univariate import Univariate
from gen_runner.nets.made import MADE

__all__ = ["MaskedAutoregressive"]


class MaskedAutoregressive(Transform):
    """y_i = g(x_i; made(x_<i)) on [B, D] vectors, g = `transformer` with P = num_params parameters
    per dimension; `made` must output [B, P * D] (parameter-major, as `MADE(out_multiplier=P)`).
    log|det J| is the sum of g's log-derivatives, the Jacobian being triangular in the MADE's order.

    `inverse` runs the MADE once per input degree, in order: pass k inverts the transformer on
    the dimension(s) of degree k only, whose parameters depend on dimensions already recovered, so
    D passes recover x exactly (to the transformer's own inverse tolerance) and a numerically
    inverted transformer solves each dimension once.
    """

    def __init__(self, made: MADE, transformer: Univariate):
        super().__init__()
        self.made = made
        self.transformer = transformer

    def _params(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        return self.made(x, context).view(x.shape[0], self.transformer.num_params, -1).movedim(1, -1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y, logabsdet = self.transformer(x, self._params(x, context))
        return y, logabsdet.sum(-1)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, logabsdet = torch.zeros_like(y), torch.zeros_like(y)
        degrees = self.made.degrees
        for degree in degrees.unique(sorted=True):
            index = (degrees == degree).nonzero().flatten()
            x_i, logabsdet_i = self.transformer.inverse(y[:, index], self._params(x, context)[:, index])
            x, logabsdet = x.index_copy(1, index, x_i), logabsdet.index_copy(1, index, logabsdet_i)
        return x, logabsdet.sum(-1)
