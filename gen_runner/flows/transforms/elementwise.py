"""Elementwise bijections: RealNVP's logit preprocessing of dequantized pixels (Dinh,
Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", sec. 4.1) and NICE's diagonal
scaling layer (Dinh, Krueger & Bengio 2015, "NICE: Non-linear Independent Components Estimation",
sec. 3.3), and a soft clip that keeps polynomial transformers' inputs bounded (as zuko's SOSPF
places one between its layers)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.flows.transforms.base import Transform, sum_except_batch

__all__ = ["Logit", "Scale", "SoftClip"]


class Logit(Transform):
    """y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1]; the inverse is a sigmoid.

    The log-det, sum of log(1 - 2 alpha) - log p - log(1 - p) with p = alpha + (1 - 2 alpha) x, is
    what makes log p(x) a density on [0, 1]^D, from which bits/dim follows.

    Deviation: the paper squashes with alpha + (1 - alpha) x, which keeps only the lower end away
    from 0; the symmetric form keeps both ends away from the logit's singularities.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"logit alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        log_p, log_1mp = torch.log(p), torch.log1p(-p)
        return log_p - log_1mp, sum_except_batch(math.log1p(-2 * self.alpha) - log_p - log_1mp)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        return x, sum_except_batch(F.logsigmoid(y) + F.logsigmoid(-y) - math.log1p(-2 * self.alpha))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Scale(Transform):
    """y = x * exp(s) with a learned s per dimension of the event, initialised to 0 (the identity);
    log-det sum(s).

    NICE's top layer, the diagonal scaling matrix S that lets the otherwise volume-preserving
    additive couplings weight some dimensions more than others, here with S_ii = exp(s_i) (positive,
    which changes no density). The paper applies it to vectors, `shape` = D; an image event shape
    (C, H, W) gives one scale per pixel of every channel, still per dimension.
    """

    def __init__(self, shape: int | Sequence[int]):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros((shape,) if isinstance(shape, int) else tuple(shape)))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y * torch.exp(-self.log_scale), -self.log_scale.sum().expand(y.shape[0])

    def extra_repr(self) -> str:
        return f"shape={tuple(self.log_scale.shape)}"


class SoftClip(Transform):
    """y = x / (1 + |x| / B), a bijection from R onto (-B, B) that is close to the identity for
    |x| << B; log|dy/dx| = -2 log(1 + |x| / B); the inverse is x = y / (1 - |y| / B).

    Between layers of a sum-of-squares flow (Jaini et al. 2019) it keeps every degree-(2r + 1)
    polynomial's input inside (-B, B), so a stack of them cannot overflow (zuko's SOSPF uses B = 11; model=sos uses 3).
    """

    def __init__(self, bound: float = 11.0):
        super().__init__()
        if bound <= 0:
            raise ValueError(f"soft clip bound must be positive, got {bound}")
        self.bound = bound

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        denominator = 1 + x.abs() / self.bound
        return x / denominator, -2 * sum_except_batch(torch.log(denominator))

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        denominator = 1 - y.abs() / self.bound
        return y / denominator, -2 * sum_except_batch(torch.log(denominator))

    def extra_repr(self) -> str:
        return f"bound={self.bound}"
