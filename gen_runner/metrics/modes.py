"""Mode coverage on the 2-D Gaussian-mixture benchmarks (VEEGAN, Srivastava et al. 2017;
PacGAN, Lin et al. 2018).

Each sample is assigned to its nearest mode centre. It is high quality when it lies within
`threshold` (3) standard deviations of that centre; a mode is captured when at least one high
quality sample is assigned to it, as in PacGAN's public evaluation code. Reverse KL is
KL(p_gen || uniform) of the distribution of all samples over their nearest modes:
0 when the modes are hit equally, log K when all samples fall on one mode.
A 2-D isotropic Gaussian puts 1 - exp(-threshold^2 / 2) of its mass within `threshold` std
(98.89% at 3), so exact samples score about that.

`stacked_modes` is the Stacked MNIST protocol (Metz et al. 2017, unrolled GAN; VEEGAN; PacGAN):
three MNIST digits stacked as colour channels give 1000 modes.
"""
from __future__ import annotations

import torch

from gen_runner.data.toy import GaussianMixture

__all__ = ["mode_coverage", "stacked_modes", "mode_metrics"]


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


def stacked_modes(digits: torch.Tensor) -> dict:
    """`modes` hit (of 1000) and `reverse_kl` KL(p_gen || uniform over 1000) in nats.

    `digits` [N, 3] holds the class (0-9) a pretrained MNIST classifier gives each channel of the N
    generated samples; the triple is the sample's mode. PacGAN and VEEGAN score 26,000 samples."""
    if digits.dim() != 2 or digits.shape[1] != 3 or not len(digits) or digits.min() < 0 or digits.max() > 9:
        raise ValueError(f"expected digits [N > 0, 3] with values 0-9, got shape {tuple(digits.shape)}")
    digits = digits.long().cpu()
    hist = torch.bincount(digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2], minlength=1000)
    p = hist[hist > 0].double() / len(digits)
    return {"modes": len(p), "reverse_kl": (p * (p * 1000).log()).sum().item()}


def mode_metrics(ctx) -> tuple[dict, dict] | None:
    """`mode_coverage` of `eval.num_samples` samples from the seed, on a 2-D Gaussian mixture; None
    on other data."""
    distribution = getattr(ctx.datamodule, "distribution", None)
    if not isinstance(distribution, GaussianMixture):
        return None
    opts = ctx.options
    samples = ctx.model.sample(opts.num_samples, generator=ctx.generator(), batch_size=opts.batch_size).cpu()
    protocol = {"num_samples": opts.num_samples, "threshold_std": 3.0, "num_modes": len(distribution.centers),
                "assignment": "nearest mode; captured = at least one sample within 3 std",
                "reverse_kl": "KL(generated mode histogram || uniform), nats"}
    return mode_coverage(samples, distribution.centers, distribution.std), protocol
