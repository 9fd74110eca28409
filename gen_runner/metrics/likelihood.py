"""Test-set likelihood of a flow: mean negative log-likelihood in nats and, for images, bits/dim,
with images scored by the importance-weighted dequantization bound (Burda, Grosse & Salakhutdinov
2016, "Importance Weighted Autoencoders"), as the Flow++ code evaluates (Ho et al. 2019; 4096 draws)."""
from __future__ import annotations

import torch

__all__ = ["likelihood"]


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
