"""The multi-scale architecture of RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density
estimation using Real NVP", sec. 3.6): after each scale but the last, half of the channels are
factored out and sent to the base distribution, the other half goes on to the next scale."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.flows.transforms.base import Compose, Transform

__all__ = ["MultiScale"]


class MultiScale(Transform):
    """Levels of transforms on images with a channel split after every level but the last.

    `levels[i]` maps the kept part of the previous level (the input x for the first) to some
    [C_i, H_i, W_i] (its shape effect is given by `output_shape`, e.g. through a `Squeeze`);
    for every level but the last, the first C_i // 2 channels are kept and the others factored out.
    `forward` maps x of event shape `shape` to a flat z of shape [B, D], D = prod(shape): the
    factored-out parts in level order, then the last level's output, each flattened. A standard
    normal on z therefore puts a standard normal on every part.

    `split_transforms` (optional, one per split) are bijections applied to each factored-out part
    with the kept half as context before it joins z. This is where a learned prior on the split
    goes: an affine one, (z_i - mu(kept)) / sigma(kept), makes z_i ~ N(mu(kept), sigma(kept)^2) as
    in Glow. By default they are identities (RealNVP).
    """

    def __init__(
        self,
        levels: Sequence[Transform],
        shape: Sequence[int],
        split_transforms: Sequence[Transform] | None = None,
    ):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.shape = tuple(shape)
        if split_transforms is None:
            split_transforms = [Compose() for _ in range(len(levels) - 1)]
        if len(split_transforms) != len(levels) - 1:
            raise ValueError(
                f"{len(levels)} levels need {len(levels) - 1} split transforms, got {len(split_transforms)}"
            )
        self.split_transforms = nn.ModuleList(split_transforms)
        self._factored_shapes: list[tuple[int, ...]] = []
        current = self.shape
        for level in self.levels[:-1]:
            c, *spatial = level.output_shape(current)
            if c < 2:
                raise ValueError(f"cannot split {c} channel(s) in half after a level")
            current = (c // 2, *spatial)
            self._factored_shapes.append((c - c // 2, *spatial))
        self._final_shape = self.levels[-1].output_shape(current)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        parts, total = [], x.new_zeros(x.shape[0])
        for level, split in zip(self.levels, self.split_transforms):
            x, logabsdet = level(x, context)
            kept = x.shape[1] // 2
            x, factored = x[:, :kept], x[:, kept:]
            factored, split_logabsdet = split(factored, context=x)
            parts.append(factored.flatten(1))
            total = total + logabsdet + split_logabsdet
        x, logabsdet = self.levels[-1](x, context)
        parts.append(x.flatten(1))
        return torch.cat(parts, 1), total + logabsdet

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        shapes = [*self._factored_shapes, self._final_shape]
        parts = z.split([math.prod(shape) for shape in shapes], dim=1)
        *factored, x = (part.reshape(-1, *shape) for part, shape in zip(parts, shapes))
        x, total = self.levels[-1].inverse(x, context)
        for level, split, part in reversed(list(zip(self.levels, self.split_transforms, factored))):
            part, split_logabsdet = split.inverse(part, context=x)
            x, logabsdet = level.inverse(torch.cat([x, part], 1), context)
            total = total + split_logabsdet + logabsdet
        return x, total

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(shape) != self.shape:
            raise ValueError(f"this multi-scale flow takes events of shape {self.shape}, got {tuple(shape)}")
        return (math.prod(self.shape),)
