"""Shape-changing bijections with log-det 0: RealNVP's squeezing operation (Dinh, Sohl-Dickstein &
Bengio 2017, "Density estimation using Real NVP", sec. 3.6) and flattening an image into the vector
that MAF-style flows model (Papamakarios et al. 2017, sec. 4.3)."""
from __future__ import annotations

import math

import torch

from gen_runner.flows.transforms.base import Transform

__all__ = ["Flatten", "Squeeze"]


class Squeeze(Transform):
    """Space-to-depth: [B, C, H, W] -> [B, 4C, H/2, W/2], each 2x2 block of a channel becoming 4
    channels (output channel 4c + 2i + j holds offset (i, j) of input channel c). H and W must be even."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        shape = self.output_shape((c, h, w))
        y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, *shape), x.new_zeros(b)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = y.shape
        x = y.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c // 4, 2 * h, 2 * w), y.new_zeros(b)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = shape
        if h % 2 or w % 2:
            raise ValueError(f"cannot squeeze a {c}x{h}x{w} tensor: height and width must be even")
        return (4 * c, h // 2, w // 2)


class Flatten(Transform):
    """[B, *shape] -> [B, prod(shape)] and back."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flatten(1), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y.view(y.shape[0], *self.shape), y.new_zeros(y.shape[0])

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(shape),)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
