"""Normalization bijections: RealNVP's batch normalization (Dinh, Sohl-Dickstein & Bengio 2017,
"Density estimation using Real NVP", sec. 3.7 and appendix E), applied to the outputs of coupling
layers, and Glow's activation normalization (Kingma & Dhariwal 2018, "Glow: Generative Flow with
Invertible 1x1 Convolutions", sec. 3.1), an affine layer with data-dependent initialization."""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.base import Transform
from gen_runner.nets import actnorm

__all__ = ["ActNorm", "BatchNorm"]


class BatchNorm(Transform):
    """y = exp(log_gamma) * (x - mean) / sqrt(var + eps) + beta, per channel (per feature for vectors).

    In training, `forward` normalises with the statistics of the batch (over the batch and spatial
    dimensions; the biased variance) and updates the running averages with `momentum`; in eval it
    uses the running averages. The log-det treats the statistics as constants (as the paper does):
    sum over channels of (log_gamma - 0.5 log(var + eps)), times H*W for images.
    `inverse` always uses the running averages (it is what sampling needs), so it is the exact
    inverse of `forward` in eval mode only.

    Deviation: appendix E of the paper normalises with a running average of recent batch statistics
    even in training; this layer uses the current batch's statistics, as standard batch norm does.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.log_gamma = nn.Parameter(torch.zeros(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return self.running_mean, self.running_var
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims), x.var(dims, correction=0)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach(), self.momentum)
        return mean, var

    def _affine(
        self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The per-channel (scale, shift) of y = scale * x + shift, shaped to broadcast over x, and the log-det."""
        log_scale = self.log_gamma - 0.5 * torch.log(var + self.eps)
        shift = self.beta - torch.exp(log_scale) * mean
        view = (-1,) + (1,) * (x.dim() - 2)
        logabsdet = log_scale.sum() * x.shape[2:].numel()
        return log_scale.view(view), shift.view(view), logabsdet.expand(x.shape[0])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift, logabsdet = self._affine(x, *self._statistics(x))
        return x * torch.exp(log_scale) + shift, logabsdet

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift, logabsdet = self._affine(y, self.running_mean, self.running_var)
        return (y - shift) * torch.exp(-log_scale), -logabsdet


class ActNorm(actnorm.ActNorm, Transform):
    """Glow's activation normalization as a bijection: `gen_runner.nets.actnorm.ActNorm`'s map
    y = (x + bias) * exp(log_scale), per channel (per feature for [B, D] vectors), data-initialised
    on the first training `forward`, with its log-det H*W * sum(log_scale) (sum(log_scale) for
    vectors). `inverse` never initializes: before the first training batch it is the identity.
    """

    def _logabsdet(self, x: torch.Tensor) -> torch.Tensor:
        return (self.log_scale.sum() * x.shape[2:].numel()).expand(x.shape[0])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y = super().forward(x)  # initializes from x first, so the log-det is the initialised one
        return y, self._logabsdet(x)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        bias, log_scale = self.shaped(y)
        return y * torch.exp(-log_scale) - bias, -self._logabsdet(y)
