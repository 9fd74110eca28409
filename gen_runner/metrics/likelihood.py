"""Test-set likelihood of a flow: mean negative log-likelihood in nats and, for images, bits/dim."""
from __future__ import annotations

import torch

__all__ = ["likelihood"]


@torch.no_grad()
def likelihood(model, loader, device: torch.device, seed: int = 0) -> dict:
    """`nll` (nats per example) and, for images, `bpd` over every example of `loader`.

    Images are dequantized with one uniform draw per pixel from a generator seeded by `seed`, so
    the figure is reproducible; see gen_runner/flows/module.py for the formula."""
    generator = torch.Generator(device).manual_seed(seed)
    total, count = torch.zeros((), dtype=torch.float64), 0
    for batch in loader:
        log_prob = model.log_prob(batch[0].to(device), generator=generator)
        total += log_prob.double().sum().cpu()
        count += len(log_prob)
    nll = -(total / count).item()
    out = {"nll": nll}
    if model.is_image:
        out["bpd"] = model.bits_per_dim(torch.tensor(-nll)).item()
    return out | {"num_examples": count}
