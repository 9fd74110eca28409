"""Normalization bijections: RealNVP's batch normalization (Dinh, Sohl-Dickstein & Bengio 2017,
"Density estimation using Real NVP", sec. 3.7 and appendix E), applied to the outputs of coupling
layers, and Glow's activation normalization (Kingma & Dhariwal 2018, "Glow: Generative Flow with
Invertible 1x1 Convolutions", sec. 3.1), an affine layer with data-dependent initialization."""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.base import Transform

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


class ActNorm(Transform):
    """y = (x + bias) * exp(log_scale), per channel (per feature for [B, D] vectors); log-det
    H*W * sum(log_scale) (sum(log_scale) for vectors).

    This is the form of the paper's code; the paper (table 1) writes y = s * x + b, the same map
    with s = exp(log_scale) and b = s * bias. Data-dependent initialization (sec. 3.1): the first
    `forward` in training mode sets bias = -mean and log_scale = -log(std + eps) from that batch
    (over the batch and spatial dimensions, the biased std), without gradient, so that batch comes
    out with zero mean and unit variance per channel. The persistent buffer `initialized` records
    it, so a model loaded from a checkpoint or resumed is never re-initialized. Until then (an
    eval-mode `forward`, or `inverse`, which never initializes) the parameters are used as they
    are, at first bias 0 and scale 1: the identity.

    Deviation: the paper's code multiplies log_scale by a constant 3 (a per-parameter learning-rate
    rescaling); here log_scale is the parameter itself.
    """

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.log_scale = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        """From the batch's moments; under DDP from all ranks' batches pooled (equal batch sizes),
        so that every replica starts with the same parameters."""
        dims = [0, *range(2, x.dim())]
        moments = torch.stack([x.mean(dims), (x * x).mean(dims)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(moments)
            moments /= torch.distributed.get_world_size()
        mean, second = moments
        std = (second - mean * mean).clamp_min(0).sqrt()
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def _affine(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """bias and log_scale shaped to broadcast over x, and the log-det [B]."""
        view = (-1,) + (1,) * (x.dim() - 2)
        logabsdet = self.log_scale.sum() * x.shape[2:].numel()
        return self.bias.view(view), self.log_scale.view(view), logabsdet.expand(x.shape[0])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.initialized:
            self._initialize(x)
        bias, log_scale, logabsdet = self._affine(x)
        return (x + bias) * torch.exp(log_scale), logabsdet

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        bias, log_scale, logabsdet = self._affine(y)
        return y * torch.exp(-log_scale) - bias, -logabsdet

    def extra_repr(self) -> str:
        return f"{self.bias.numel()}, eps={self.eps}"
