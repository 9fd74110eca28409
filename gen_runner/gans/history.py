"""The image history pool of CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", sec. 4), after Shrivastava et al. 2017:
the discriminators are updated with a history of generated images rather than only the latest
ones, which reduces model oscillation.

As the authors' ImagePool: until the pool holds `size` (50) images, each fake goes into it and is
returned as is; once full, each fake is, with probability 1/2, returned as is, otherwise swapped
with a stored image chosen uniformly (the fake takes its place and the stored one is returned).
`size=0` turns the pool off. The pool is part of the module's state (a buffer), so a resumed run
continues with the same history.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["HistoryPool"]


class HistoryPool(nn.Module):
    """A pool of `size` images of `shape` (C, H, W)."""

    def __init__(self, shape: Sequence[int], size: int = 50):
        super().__init__()
        if size < 0:
            raise ValueError(f"history pool size {size}: pass 0 (off) or more images (the paper: 50)")
        self.size = size
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("images", torch.zeros(size, *shape))

    @torch.no_grad()
    def forward(self, fakes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """What the discriminator judges instead of `fakes` [B, ...] (detached); `generator` (CPU)
        seeds the coin flips and picks."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = fakes.clone()
        for i, fake in enumerate(fakes):
            if self.count < self.size:
                self.images[self.count] = fake
                self.count += 1
            elif torch.rand((), generator=generator) < 0.5:
                j = int(torch.randint(self.size, (), generator=generator))
                out[i] = self.images[j].clone()
                self.images[j] = fake
        return out
