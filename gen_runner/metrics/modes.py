"""Mode coverage on the 2-D Gaussian-mixture benchmarks (VEEGAN, Srivastava et al. 2017;
PacGAN, Lin et al. 2018).

Each sample is assigned to its nearest mode centre. It is high quality when it lies within
`threshold` (3) standard deviations of that centre; a mode is captured when at least one high
quality sample is assigned to it, as in PacGAN's public evaluation code. Reverse KL is
KL(p_gen || uniform) of the distribution of all samples over their nearest modes:
0 when the modes are hit equally, log K when all samples fall on one mode.
A 2-D isotropic Gaussian puts 1 - exp(-threshold^2 / 2) of its mass within `threshold` std
(98.89% at 3), so exact samples score about that.
"""
from __future__ import annotations

import torch

__all__ = ["mode_coverage"]


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0) -> dict:
    """`modes` captured, `high_quality_pct` (%), `reverse_kl` (nats) of samples [N, 2]."""
    samples, centers = samples.double().cpu(), centers.double().cpu()
    dist, nearest = torch.cdist(samples, centers).min(dim=1)
    k = len(centers)
    good = dist < threshold * std
    captured = torch.bincount(nearest[good], minlength=k) > 0
    p = torch.bincount(nearest, minlength=k).double() / len(samples)
    reverse_kl = (p[p > 0] * (p[p > 0] * k).log()).sum()
    return {
        "modes": int(captured.sum()),
        "high_quality_pct": 100.0 * good.double().mean().item(),
        "reverse_kl": reverse_kl.item(),
    }
