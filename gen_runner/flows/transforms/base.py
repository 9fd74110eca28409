"""The bijection contract shared by every normalizing flow (Rezende & Mohamed 2015; Dinh et al. 2017).

A `Transform` maps data toward the base distribution (`forward`, the normalizing direction) and back
(`inverse`); both return the log-absolute-determinant of their Jacobian per example, so that
log p(x) = log p_base(forward(x)[0]) + forward(x)[1].
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Compose", "Inverse", "Transform", "sum_except_batch"]


def sum_except_batch(x: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first: [B, ...] -> [B]."""
    return x.reshape(x.shape[0], -1).sum(1)


class Transform(nn.Module):
    """An invertible map with a tractable Jacobian determinant, batched over the first dimension.

    `forward(x, context=None) -> (y, log|det dy/dx|)` and `inverse(y, context=None) -> (x, log|det dx/dy|)`,
    log-dets of shape [batch]. `context` is an optional conditioning tensor, passed through by
    transforms that do not use it. `output_shape` maps an event shape (no batch dimension) to the
    event shape `forward` produces; transforms that change shape override it.
    """

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape)


class Compose(Transform):
    """Transforms applied in order (forward) and in reverse order (inverse), log-dets summed.

    `Compose()` with no transforms is the identity.
    """

    def __init__(self, *transforms: Transform):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        total = x.new_zeros(x.shape[0])
        for transform in self.transforms:
            x, logabsdet = transform(x, context)
            total = total + logabsdet
        return x, total

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        total = y.new_zeros(y.shape[0])
        for transform in reversed(self.transforms):
            y, logabsdet = transform.inverse(y, context)
            total = total + logabsdet
        return y, total

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for transform in self.transforms:
            shape = transform.output_shape(shape)
        return tuple(shape)


class Inverse(Transform):
    """The inverse of a transform as a transform: forward and inverse swapped.

    How an inverse autoregressive flow is built from a masked autoregressive one (Kingma et al.
    2016; Papamakarios et al. 2017, sec. 3.3): the cheap direction becomes sampling. The wrapped
    transform must not change shape.
    """

    def __init__(self, transform: Transform):
        super().__init__()
        self.transform = transform

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform.inverse(x, context)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(y, context)
