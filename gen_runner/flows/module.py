"""The maximum-likelihood LightningModule every normalizing flow trains in.

Points are modelled as given; the loss and `val/nll` are negative log-likelihoods in nats per
example. Images arrive as discrete pixel values x in {0, ..., K-1}^D and are uniformly
dequantized, u = (x + v) / K with v ~ U[0, 1)^D (Theis et al. 2016). Since the density of u on
[0, 1)^D integrates each pixel's bin of width 1/K,

    log P(x) >= E_v[log p(u)] - D log K,        bits/dim = -(log p(u) - D log K) / (D log 2),

the standard bits/dim of the discrete data. A logit preprocessing inside the flow (RealNVP's
y = logit(a + (1 - 2a) u)) carries its own log-Jacobian, so the figure needs no further correction.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gen_runner.base import GenerativeModule
from gen_runner.data.images import dequantize

__all__ = ["FlowModule"]


class FlowModule(GenerativeModule):
    family = "flow"

    def __init__(self, flow: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None):
        super().__init__(data, optimizer)
        self.flow = flow(data_shape=self.data_shape)
        self._val_generator: torch.Generator | None = None

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Log-likelihood per example in nats: of the points, or the dequantization bound of
        the discrete images (see the module docstring)."""
        if not self.is_image:
            return self.flow.log_prob(x)
        u = dequantize(x.float(), self.num_levels, generator=generator)
        return self.flow.log_prob(u) - self.num_dims * math.log(self.num_levels)

    def bits_per_dim(self, log_prob: torch.Tensor) -> torch.Tensor:
        return -log_prob / (self.num_dims * math.log(2))

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(n, *self.flow.base.shape, generator=generator)

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Temperature T scales the base distribution's standard deviation (Kingma & Dhariwal 2018)."""
        x = self.flow.inverse(noise * temperature)[0]
        return x.clamp(0, 1) if self.is_image else x

    # -- training ------------------------------------------------------------------------------
    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def _metrics(self, log_prob: torch.Tensor, stage: str) -> dict[str, torch.Tensor]:
        out = {f"{stage}/nll": -log_prob.mean()}
        if self.is_image:
            out[f"{stage}/bpd"] = self.bits_per_dim(log_prob).mean()
        return out

    def training_step(self, batch, batch_idx: int):
        metrics = self._metrics(self.log_prob(batch[0]), "train")
        self.log_dict(metrics, prog_bar=True)
        # Images minimise bits/dim (nll scaled by a constant), so learning rates carry across sizes.
        return {**metrics, "loss": metrics["train/bpd"] if self.is_image else metrics["train/nll"]}

    def on_validation_epoch_start(self) -> None:
        # The same dequantization noise at every validation, drawn from its own generator so that
        # validation neither jitters the curve nor consumes the training RNG (exact resume).
        self._val_generator = torch.Generator(self.device).manual_seed(0)

    def validation_step(self, batch, batch_idx: int) -> None:
        metrics = self._metrics(self.log_prob(batch[0], self._val_generator), "val")
        self.log_dict(metrics, prog_bar=True, batch_size=len(batch[0]))
