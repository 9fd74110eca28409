"""Activation normalization (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1
Convolutions", sec. 3.1) as a plain network layer: a per-channel affine map initialised from the
first batch. Glow's coupling networks use it between convolutions (gen_runner/nets/glow.py); the
flow transform with its log-determinant builds on it (gen_runner/flows/transforms/normalization.py)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActNorm"]


class ActNorm(nn.Module):
    """y = (x + bias) * exp(log_scale), per channel of [B, C, ...] (per feature for [B, D] vectors).

    This is the form of the paper's code; the paper (table 1) writes y = s * x + b, the same map
    with s = exp(log_scale) and b = s * bias. Data-dependent initialization (sec. 3.1): the first
    `forward` in training mode sets bias = -mean and log_scale = -log(std + eps) from that batch
    (over the batch and spatial dimensions, the biased std), without gradient, so that batch comes
    out with zero mean and unit variance per channel. The persistent buffer `initialized` records
    it, so a model loaded from a checkpoint or resumed is never re-initialized. Until then (an
    eval-mode `forward`) the parameters are used as they are, at first bias 0 and scale 1: the
    identity.

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

    def shaped(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bias and log_scale shaped to broadcast over x."""
        view = (-1,) + (1,) * (x.dim() - 2)
        return self.bias.view(view), self.log_scale.view(view)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.initialized:
            self._initialize(x)
        bias, log_scale = self.shaped(x)
        return (x + bias) * torch.exp(log_scale)

    def extra_repr(self) -> str:
        return f"{self.bias.numel()}, eps={self.eps}"
