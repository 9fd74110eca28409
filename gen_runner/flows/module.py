"""The maximum-likelihood LightningModule every normalizing flow trains in.

Points are modelled as given; the loss and `val/nll` are negative log-likelihoods in nats per
example. Images arrive as discrete pixel values x in {0, ..., K-1}^D and are dequantized,
u = (x + v) / K with noise v ~ q(v | x) on [0, 1)^D (gen_runner/flows/dequantization.py). Since the
density of u on [0, 1)^D integrates each pixel's bin of width 1/K,

    log P(x) >= E_q[log p(u) - D log K - log q(v | x)],
    bits/dim = -(log p(u) - D log K - log q(v | x)) / (D log 2),

the standard bits/dim of the discrete data (an upper bound on its true code length):

- `dequantization="uniform"`: v ~ U[0, 1)^D, one draw per pixel, log q = 0 (Theis et al. 2016);
- `dequantization="variational"`: q(v | x) is a flow conditioned on x, trained jointly with the
  model by maximising the same bound (Ho et al. 2019, "Flow++", sec. 3.1); `variational` holds
  its options (see `VariationalDequantization`).

With S draws v_1..v_S the importance-weighted bound (Burda, Grosse & Salakhutdinov 2016, "Importance
Weighted Autoencoders"; the Flow++ code reports it with S = 4096)

    log P(x) >= log (1/S) sum_s exp(log p(u_s) - D log K - log q(v_s | x))

equals the bound above at S = 1, and its expectation increases with S toward log P(x) (Burda et al.,
theorem 1); `eval eval.iw_samples=S` reports it. A logit preprocessing inside the flow (RealNVP's
y = logit(a + (1 - 2a) u)) carries its own log-Jacobian, so the figure needs no further correction.
Dequantization concerns discrete images only: points have an exact likelihood, and asking for
variational dequantization on them is an error.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from gen_runner.base import GenerativeModule
from gen_runner.capabilities import eval_metric
from gen_runner.flows.dequantization import Dequantization, UniformDequantization, VariationalDequantization
from gen_runner.flows.distributions import StandardNormal
from gen_runner.metrics.likelihood import likelihood_metrics

__all__ = ["FlowModule"]


class FlowModule(GenerativeModule):
    family = "flow"
    temperature_means = "scales the base distribution's standard deviation (Kingma & Dhariwal 2018)"

    DEQUANTIZATIONS = ("uniform", "variational")

    def __init__(self, flow: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 dequantization: str = "uniform", variational: Mapping | None = None, warmup_steps: int = 0,
                 compile: bool = False):
        """`dequantization`: "uniform" or "variational" (images); `variational`: the keyword
        arguments of `VariationalDequantization` (used with "variational"); `warmup_steps`: the
        learning rate rises linearly from lr / warmup_steps to lr over that many steps (Glow);
        `compile`: torch.compile the flow's log_prob for training (weights' names unchanged)."""
        super().__init__(data, optimizer)
        self.compile_nets = compile
        if warmup_steps < 0:
            raise ValueError(f"model.warmup_steps={warmup_steps}: give 0 (no warmup) or more steps")
        self.warmup_steps = warmup_steps
        if dequantization not in self.DEQUANTIZATIONS:
            raise ValueError(f"unknown dequantization {dequantization!r}; "
                             f"choose one of {', '.join(self.DEQUANTIZATIONS)}")
        if dequantization != "uniform" and not self.is_image:
            raise ValueError(f"dequantization={dequantization} applies to images of discrete pixels, not to points "
                             f"of shape {self.data_shape}, whose likelihood is exact; set model.dequantization=uniform")
        self.dequantization = dequantization
        self.flow = flow(data_shape=self.data_shape)
        self.dequantizer: Dequantization | None = None
        if self.is_image:
            self.dequantizer = (UniformDequantization(self.num_levels) if dequantization == "uniform" else
                                VariationalDequantization(self.data_shape, self.num_levels, **(variational or {})))
        self._val_generator: torch.Generator | None = None

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.compile_nets:
            self.flow.log_prob = torch.compile(self.flow.log_prob)

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 num_samples: int = 1) -> torch.Tensor:
        """Log-likelihood per example in nats: of the points (exact), or the dequantization bound
        of the discrete images, importance-weighted over `num_samples` draws (module docstring)."""
        if not self.is_image:
            return self.flow.log_prob(x)
        bounds = []
        for _ in range(num_samples):
            u, log_q = self.dequantizer.sample(x, generator)
            bounds.append(self.flow.log_prob(u) - self.num_dims * math.log(self.num_levels) - log_q)
        return torch.logsumexp(torch.stack(bounds), 0) - math.log(num_samples)

    def bits_per_dim(self, log_prob: torch.Tensor) -> torch.Tensor:
        return -log_prob / (self.num_dims * math.log(2))

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """From the base distribution; with a generator drawn on the CPU, so that a seed gives the
        same samples on every device."""
        device = "cpu" if generator is not None else self.device
        return self.flow.base.sample(n, generator=generator, device=device).to(self.device)

    @property
    def gaussian_noise(self) -> bool:
        return type(self.flow.base) is StandardNormal  # NICE's logistic prior is not

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Temperature T scales the base distribution's standard deviation (Kingma & Dhariwal 2018)."""
        x = self.flow.inverse(noise * temperature)[0]
        return x.clamp(0, 1) if self.is_image else x

    # -- training ------------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if not self.warmup_steps:
            return optimizer
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / self.warmup_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}

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

    @eval_metric("nll; images: bpd (the importance-weighted dequantization bound, eval.iw_samples)")
    def likelihood(self, ctx):
        # Transforms with a stochastic log-det (residual flows) take the exact one out of training for
        # inputs of at most `exact_max_dim` dimensions: eval.exact_logdet_max_dim sets it for the run.
        blocks = [m for m in self.flow.modules() if hasattr(m, "exact_max_dim")]
        for block in blocks:
            block.exact_max_dim = ctx.options.exact_logdet_max_dim
        metrics, protocol = likelihood_metrics(ctx)
        if blocks:
            protocol["exact_logdet_max_dim"] = ctx.options.exact_logdet_max_dim
        return metrics, protocol
