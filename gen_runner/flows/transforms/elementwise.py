"""Elementwise bijections: RealNVP's logit preprocessing of dequantized pixels (Dinh,
Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", sec. 4.1)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gen_runner.flows.transforms.base import Transform, sum_except_batch

__all__ = ["Logit"]


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
