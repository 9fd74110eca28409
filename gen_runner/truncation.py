"""The truncation trick's noise: a standard normal truncated to [-t, t], values beyond resampled.

BigGAN (Brock, Donahue & Simonyan 2019, sec. 3.1) samples z from a truncated normal "where values
which fall outside a range are resampled to fall inside that range": a smaller threshold t trades
variety for fidelity. Every GAN with Gaussian noise offers it as `truncation=t`; StyleGAN's
truncation is its own (psi in W, gen_runner/gans/stylegan.py). A model says what `truncation=`
means in its `truncation_means` (gen_runner/base.py).
"""
from __future__ import annotations

import torch

__all__ = ["truncated_normal"]


def truncated_normal(shape: tuple[int, ...], threshold: float, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """N(0, 1) draws of `shape` conditioned on |z| <= threshold, by resampling the values beyond it
    (from `generator` on the CPU if given, so a seed gives the same draw on every device)."""
    if not threshold > 0:
        raise ValueError(f"truncation threshold {threshold}: pass a value > 0")
    where = "cpu" if generator is not None else device
    z = torch.randn(shape, generator=generator, device=where)
    while (outside := z.abs() > threshold).any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=where)
    return z.to(device) if device is not None else z
