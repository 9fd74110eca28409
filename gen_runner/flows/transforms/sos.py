"""The sum-of-squares polynomial transformer of Jaini, Selby & Yu 2019, "Sum-of-Squares Polynomial
Flow", sec. 3: y = c + int_0^x sum_{k=1}^K (sum_{l=0}^r a_kl u^l)^2 du, a polynomial of degree
2r + 1 whose derivative, a sum of squares, is non-negative (positive unless all K polynomials share
a real root, a measure-zero event), so the map is increasing and onto the real line.

In closed form, with the Gram matrix G = A^T A of the coefficients A [K, r + 1],
y = c + sum_{l,m} G_lm x^(l+m+1) / (l+m+1), and dy/dx = sum_k (sum_l a_kl x^l)^2.
Defaults K = 5 squares of degree r = 4 (a degree-9 map); Pyro's `Polynomial` and zuko's `SOSPF`
use r = 4 with K = 3. Parameters [c, a_10..a_1r, ..., a_K0..a_Kr], with 1/sqrt(K) added to every
a_k0 so that zero parameters are the identity (dy/dx = K / K = 1, c = 0): this package's
convention, not the paper's. The inverse is numerical (`numerical.invert`).

Polynomials grow as |x|^(2r+1): the map is meant for standardized inputs (|x| of a few units, as
the paper's experiments and zuko's warning to keep features within [-10, 10]); far out, float32
loses y's precision and the inverse its accuracy (eps * |y| / (dy/dx)).
"""
from __future__ import annotations

import math

import torch

from gen_runner.flows.transforms.numerical import invert
from gen_runner.flows.transforms.univariate import Univariate

__all__ = ["SumOfSquares"]


class SumOfSquares(Univariate):
    """K = `polynomials` squares of polynomials of degree r = `degree`: num_params = 1 + K (r + 1)."""

    def __init__(self, polynomials: int = 5, degree: int = 4):
        super().__init__()
        self.polynomials, self.degree = polynomials, degree
        self.num_params = 1 + polynomials * (degree + 1)
        powers = torch.arange(degree + 1)
        self.register_buffer("exponents", powers[:, None] + powers[None, :] + 1, persistent=False)

    def _coefficients(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """c [...] and A [..., K, r + 1], the identity offset included."""
        a = params[..., 1:].unflatten(-1, (self.polynomials, self.degree + 1))
        offset = torch.zeros(self.degree + 1, dtype=params.dtype, device=params.device)
        offset[0] = 1.0 / math.sqrt(self.polynomials)
        return params[..., 0], a + offset

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, a = self._coefficients(params)
        powers = x[..., None] ** torch.arange(2 * self.degree + 2, dtype=x.dtype, device=x.device)
        squares = (a * powers[..., None, : self.degree + 1]).sum(-1) ** 2  # [..., K]
        gram = a.transpose(-1, -2) @ a  # [..., r + 1, r + 1]
        y = c + (gram * powers[..., self.exponents] / self.exponents).sum((-1, -2))
        return y, torch.log(squares.sum(-1))

    def inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return invert(lambda x: self.forward(x, params), y)

    def extra_repr(self) -> str:
        return f"polynomials={self.polynomials}, degree={self.degree}"
