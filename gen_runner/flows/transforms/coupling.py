"""Coupling layers: NICE's additive coupling (Dinh, Krueger & Bengio 2015, "NICE: Non-linear
Independent Components Estimation") and RealNVP's affine coupling (Dinh, Sohl-Dickstein & Bengio
2017, "Density estimation using Real NVP", sec. 3.3-3.4), with the binary masks RealNVP uses.

A mask (bool, event shape) marks the conditioning half x_a, which passes through unchanged; the
rest, x_b, is transformed elementwise with parameters computed by a conditioner network from
b * x (the masked input, RealNVP eq. 9), so the Jacobian is triangular.
"""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.base import Transform, sum_except_batch

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Coupling",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
]


def alternating_mask(dim: int, parity: int) -> torch.Tensor:
    """[dim] mask conditioning on the even features (parity 0) or the odd ones (parity 1)."""
    return torch.arange(dim) % 2 == parity % 2


def checkerboard_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """[c, h, w] spatial checkerboard (RealNVP fig. 3, left), the same in every channel; parity
    0 conditions on the pixels with i + j even."""
    i, j = torch.arange(h)[:, None], torch.arange(w)[None, :]
    return ((i + j) % 2 == parity % 2).expand(c, h, w).clone()


def channel_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """[c, h, w] channel-wise mask (RealNVP fig. 3, right): parity 0 conditions on the first half
    of the channels, parity 1 on the second half."""
    if c % 2:
        raise ValueError(f"a channel-wise mask needs an even number of channels, got {c}")
    first = torch.arange(c) < c // 2
    return (first if parity % 2 == 0 else ~first)[:, None, None].expand(c, h, w).clone()


class Coupling(Transform):
    """y_a = x_a, y_b = g(x_b; conditioner(b * x)): the shared machinery of coupling layers.

    `mask` is a bool (or 0/1) tensor of the event shape, true on x_a. The conditioner maps the
    masked input [B, *event] (and the context, as a second argument, when one is given) to the
    elementwise parameters; subclasses define the elementwise bijection g in `_couple`.
    """

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask).bool())
        self.conditioner = conditioner

    def _params(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        masked = x * self.mask
        return self.conditioner(masked) if context is None else self.conditioner(masked, context)

    def _couple(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(x, self._params(x, context), inverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(y, self._params(y, context), inverse=True)


class AdditiveCoupling(Coupling):
    """NICE's additive coupling y_b = x_b + t(x_a), volume preserving (log-det 0).

    The conditioner outputs as many channels/features as the input.
    """

    def _couple(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        shift = params * ~self.mask
        return (x - shift if inverse else x + shift), x.new_zeros(x.shape[0])


class AffineCoupling(Coupling):
    """RealNVP's affine coupling y_b = x_b * exp(s(x_a)) + t(x_a), log-det = sum s(x_a).

    The conditioner outputs twice the channels/features of the input: the first half is the raw
    log-scale, the second the shift t. `scale="tanh"` bounds the log-scale as s = scale_factor *
    tanh(raw) with a learned scale factor per channel (per feature for vectors), initialised to 1
    (RealNVP sec. 4.1); `scale="none"` uses s = raw. A zero-initialised conditioner makes the
    layer the identity.
    """

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module, scale: str = "tanh"):
        super().__init__(mask, conditioner)
        if scale not in ("tanh", "none"):
            raise ValueError(f"unknown coupling scale {scale!r}; choose 'tanh' or 'none'")
        self.scale = scale
        if scale == "tanh":
            shape = (self.mask.shape[0],) + (1,) * (self.mask.dim() - 1)
            self.scale_factor = nn.Parameter(torch.ones(shape))

    def _couple(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raw, shift = params.chunk(2, dim=1)
        log_scale = self.scale_factor * torch.tanh(raw) if self.scale == "tanh" else raw
        log_scale, shift = log_scale * ~self.mask, shift * ~self.mask
        if inverse:
            return (x - shift) * torch.exp(-log_scale), -sum_except_batch(log_scale)
        return x * torch.exp(log_scale) + shift, sum_except_batch(log_scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}"
