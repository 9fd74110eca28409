"""Test-set likelihood of a flow: mean negative log-likelihood in nats and, for images, bits/dim,
with images scored by the importance-weighted dequantization bound (Burda, Grosse & Salakhutdinov
2016, "Importance Weighted Autoencoders"), as the Flow++ code evaluates (Ho et al. 2019; 4096 draws)."""
from __future__ import annotations

import torch

from gen_runner.errors import UserError
from gen_runner.metrics.context import pooled

__all__ = ["likelihood", "likelihood_metrics"]


@torch.no_grad()
def likelihood(model, loader, device: torch.device, seed: int = 0, iw_samples: int = 1) -> dict:
    """`nll` (nats per example) and, for images, `bpd` over every example of `loader`.

    Images are scored by the importance-weighted bound log (1/S) sum_s exp(log p(u_s) - D log K -
    log q(v_s | x)) over S = `iw_samples` dequantization draws per image from a generator seeded by
    `seed`, so the figure is reproducible; S = 1 is the plain bound, larger S tightens it (see
    gen_runner/flows/module.py). Points have an exact likelihood and ignore S."""
    generator = torch.Generator(device).manual_seed(seed)
    total, count = torch.zeros((), dtype=torch.float64), 0
    for batch in loader:
        log_prob = model.log_prob(batch[0].to(device), generator=generator, num_samples=iw_samples)
        total += log_prob.double().sum().cpu()
        count += len(log_prob)
    nll = -(total / count).item()
    out = {"nll": nll}
    if model.is_image:
        out["bpd"] = model.bits_per_dim(torch.tensor(-nll)).item()
    return out | {"num_examples": count}


def likelihood_metrics(ctx) -> tuple[dict, dict]:
    """`likelihood` pooled over the evaluated split(s), with its protocol."""
    model, opts = ctx.model, ctx.options
    if tuple(ctx.datamodule.shape) != model.data_shape:
        raise UserError(f"the data has examples of shape {tuple(ctx.datamodule.shape)} but the model was trained on "
                        f"{model.data_shape}; pass data of the same shape")
    if opts.iw_samples < 1:
        raise UserError(f"eval.iw_samples={opts.iw_samples}: pass at least 1 dequantization draw per image")
    metrics, n = pooled([likelihood(model, loader, ctx.device, ctx.seed, opts.iw_samples) for loader in ctx.loaders()])
    protocol = {"split": opts.split, "num_examples": n, "unit": "nll: nats per example"}
    if model.is_image:
        protocol.update(dequantization=model.dequantization, iw_samples=opts.iw_samples, num_levels=model.num_levels,
                        unit="nll: nats per image; bpd: bits per dimension of the discrete data",
                        bound="log P(x) >= log mean_s exp(log p(u_s) - D log K - log q(v_s|x)), "
                              "iw_samples dequantization draws v_s per image")
    return metrics, protocol
