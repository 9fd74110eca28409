"""Are these weights finite? One fused reduction over all of them, and the names only on failure.

Used before a checkpoint is written (callbacks/checkpoint.py), every N steps by the divergence
guard, and when `eval`/`sample` read a checkpoint (checkpoints.py). Plain torch.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["nonfinite", "module_tensors"]


def nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """The names of the floating-point tensors in `named` holding an inf or a NaN ([] if none).

    The fast path is one `torch._foreach_norm(ord=inf)` (the largest |x| of each tensor: inf for an
    inf, NaN for a NaN, never an overflow) and one `isfinite().all()` over those maxima, so a check is
    a couple of kernel launches and one device sync however many tensors there are."""
    named = [(n, t.detach()) for n, t in named if torch.is_tensor(t) and (t.is_floating_point() or t.is_complex())]
    named = [(n, t) for n, t in named if t.numel()]
    if not named:
        return []
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for _, t in named:
        by_device.setdefault(t.device, []).append(t)
    if all(bool(torch.stack(torch._foreach_norm(ts, float("inf"))).isfinite().all()) for ts in by_device.values()):
        return []
    return [n for n, t in named if not bool(torch.isfinite(t).all())]


def module_tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """A module's parameters and buffers, by their state_dict names."""
    return [*module.named_parameters(), *module.named_buffers()]
