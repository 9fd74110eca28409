"""Base distributions of normalizing flows: the standard normal of RealNVP (Dinh, Sohl-Dickstein &
Bengio 2017, "Density estimation using Real NVP", eq. 3) and the standard logistic of NICE (Dinh,
Krueger & Bengio 2015, sec. 3.4)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.flows.transforms.base import sum_except_batch

__all__ = ["StandardLogistic", "StandardNormal"]


class StandardNormal(nn.Module):
    """N(0, I) over events of `shape`; an nn.Module so that `.to()` and `.double()` move its samples.

    `sample` draws with standard deviation `temperature` (Kingma & Dhariwal 2018's reduced-temperature
    sampling); `log_prob` is always that of N(0, I), summed over the event dimensions.
    """

    def __init__(self, shape: int | Sequence[int]):
        super().__init__()
        self.shape = torch.Size([shape] if isinstance(shape, int) else shape)
        # Empty buffer: tracks the module's device and dtype, saves nothing in the state dict.
        self.register_buffer("_anchor", torch.empty(0), persistent=False)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * sum_except_batch(z**2) - 0.5 * self.shape.numel() * math.log(2 * math.pi)

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        device = self._anchor.device if device is None else device
        return temperature * self.draw(n, generator, device)

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
        """n standard draws of the event shape, in the module's dtype."""
        return torch.randn(n, *self.shape, generator=generator, device=device, dtype=self._anchor.dtype)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.shape)}"


class StandardLogistic(StandardNormal):
    """Independent standard logistics, log p(z) = -sum(softplus(z) + softplus(-z)), NICE's prior
    for images ("its gradients are better behaved", sec. 3.4). `sample` draws logit(U) times
    `temperature`."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -sum_except_batch(F.softplus(z) + F.softplus(-z))

    def draw(self, n: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
        u = torch.rand(n, *self.shape, generator=generator, device=device, dtype=self._anchor.dtype)
        return torch.logit(u.clamp(torch.finfo(u.dtype).tiny, 1 - torch.finfo(u.dtype).eps))
