"""Shared checks for flow tests."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.autograd.functional import jacobian


def _jacobian_logabsdet(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """log|det| of the per-example Jacobian of a batched map f, by autograd: [B]."""
    batch = x.shape[0]
    jac = jacobian(f, x).reshape(batch, -1, batch, x[0].numel())
    return torch.stack([torch.linalg.slogdet(jac[i, :, i])[1] for i in range(batch)])


@pytest.fixture
def jacobian_logabsdet() -> Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]:
    return _jacobian_logabsdet
