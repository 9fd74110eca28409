"""A normalizing flow: a bijection to a base distribution, with exact log-likelihood by the change
of variables formula (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", eq. 3)."""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.base import Transform

__all__ = ["Flow"]


class Flow(nn.Module):
    """log p(x) = log p_base(f(x)) + log|det df/dx| with f = `transform`; samples are f^-1(z), z ~ base.

    `base` is a distribution module with `log_prob(z)` and `sample(n, temperature=..., generator=...)`
    over the event shape `transform` produces (e.g. `StandardNormal`).
    """

    def __init__(self, transform: Transform, base: nn.Module):
        super().__init__()
        self.transform = transform
        self.base = base

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to base: (z, log|det dz/dx|)."""
        return self.transform(x, context)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Base to data: (x, log|det dx/dz|)."""
        return self.transform.inverse(z, context)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        z, logabsdet = self.transform(x, context)
        return self.base.log_prob(z) + logabsdet

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        context: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        z = self.base.sample(n, temperature=temperature, generator=generator)
        return self.transform.inverse(z, context)[0]
