"""Coupling layers (Dinh, Krueger & Bengio 2015, "NICE: Non-linear Independent Components
Estimation"; Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", sec. 3.3-3.4)
with any univariate transformer: additive (NICE), affine (RealNVP, Glow), splines (Durkan et al.
2019) and the rest of `univariate`; and the binary masks RealNVP uses.

A mask (bool, event shape) marks the conditioning half x_a, which passes through unchanged; the
rest, x_b, is transformed elementwise with parameters computed by a conditioner network from x_a,
so the Jacobian is triangular and log|det J| is the sum of the transformer's log-derivatives.
"""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.base import Transform, sum_except_batch
from gen_runner.flows.transforms.univariate import Univariate

__all__ = ["Coupling", "TanhLogScale", "alternating_mask", "channel_mask", "checkerboard_mask"]


def alternating_mask(dim: int, parity: int) -> torch.Tensor:
    """[dim] mask conditioning on the even features (parity 0) or the odd ones (parity 1)."""
    return torch.arange(dim) % 2 == parity % 2


def checkerboard_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """[c, h, w] spatial checkerboard (RealNVP fig. 3, left), the same in every channel; parity
    0 conditions on the pixels with i + j even."""
    i, j = torch.arange(h)[:, None], torch.arange(w)[None, :]
    return ((i + j) % 2 == parity % 2).expand(c, h, w).clone()


def channel_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """[c, h, w] channel-wise mask (RealNVP fig. 3, right; Glow's split): parity 0 conditions on
    the first half of the channels, parity 1 on the second half."""
    if c % 2:
        raise ValueError(f"a channel-wise mask needs an even number of channels, got {c}")
    first = torch.arange(c) < c // 2
    return (first if parity % 2 == 0 else ~first)[:, None, None].expand(c, h, w).clone()


class TanhLogScale(nn.Module):
    """RealNVP's bounded log-scale (sec. 4.1): the first `features` channels (features for vectors)
    of a conditioner's output, the raw log-scales, become factor * tanh(raw) with a learned factor
    per channel initialised to 1; the rest (the shifts) pass unchanged. Append it to a conditioner
    feeding an `Affine("exp")` transformer."""

    def __init__(self, features: int):
        super().__init__()
        self.factor = nn.Parameter(torch.ones(features))

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        n = self.factor.numel()
        factor = self.factor.view(n, *([1] * (params.dim() - 2)))
        return torch.cat([factor * torch.tanh(params[:, :n]), params[:, n:]], 1)


class Coupling(Transform):
    """y_a = x_a, y_b = g(x_b; conditioner(x_a)) with g = `transformer`, a `Univariate`.

    `mask` (bool or 0/1, the event shape) is true on x_a. The conditioner's interface follows the
    data: for vectors [B, D] it maps x_a, [B, D_a], to [B, P * D_b] (P = transformer.num_params;
    parameter-major: the first D_b outputs are every element's first parameter); for images it maps
    the masked image x * mask, [B, C, H, W] (RealNVP eq. 9), to [B, P * C, H, W], of which the
    entries at x_b are used. With a context, the conditioner is called as conditioner(input, context).
    """

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module, transformer: Univariate):
        super().__init__()
        mask = torch.as_tensor(mask).bool()
        self.register_buffer("mask", mask)
        flat = mask.flatten()
        self.register_buffer("index_a", flat.nonzero().flatten(), persistent=False)
        self.register_buffer("index_b", (~flat).nonzero().flatten(), persistent=False)
        self.conditioner = conditioner
        self.transformer = transformer

    def _params(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """The transformer's parameters for x_b: [B, D_b, P]."""
        if self.mask.dim() == 1:
            inputs = x[:, self.index_a]
        else:
            inputs = x * self.mask
        params = self.conditioner(inputs) if context is None else self.conditioner(inputs, context)
        params = params.reshape(x.shape[0], self.transformer.num_params, -1)
        if self.mask.dim() > 1:
            params = params[:, :, self.index_b]
        return params.movedim(1, -1)

    def _couple(self, x: torch.Tensor, context: torch.Tensor | None, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._params(x, context)
        flat = x.flatten(1)
        g = self.transformer.inverse if inverse else self.transformer.forward
        y_b, logabsdet = g(flat[:, self.index_b], params)
        y = flat.index_copy(1, self.index_b, y_b).view_as(x)
        return y, sum_except_batch(logabsdet)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(x, context, inverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(y, context, inverse=True)
