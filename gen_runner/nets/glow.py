"""Glow's networks (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1
Convolutions"): NN(), the conditioner of its affine coupling layers (sec. 3.3), with the zero
initialization of its last convolution, and the learned prior on the channels factored out at each
split of the multi-scale architecture ("split2d" in the paper's code)."""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.nets.actnorm import ActNorm

__all__ = ["GlowConditioner", "GlowPrior", "ZeroConv2d"]


class ZeroConv2d(nn.Module):
    """3x3 convolution (padding 1) with weights and bias initialised to zero, its output scaled per
    channel by exp(3 * logs), logs learned and initialised to 0: it outputs zero at initialization
    (sec. 3.3, "zero initialization"; conv2d_zeros in the paper's code)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(3.0 * self.logs)


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """A convolution followed by ActNorm, hence without bias; weights from N(0, 0.05) as in the paper's code."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    nn.init.normal_(conv.weight, 0.0, 0.05)
    return conv


class GlowConditioner(nn.Sequential):
    """Glow's NN(): conv3x3(in, hidden) -> ActNorm -> ReLU -> conv1x1(hidden, hidden) -> ActNorm ->
    ReLU -> ZeroConv2d(hidden, out), height and width preserved; 512 hidden channels in the paper.

    Its output is zero at initialization, so an affine coupling using it starts as a fixed scaling
    (sigmoid(2) with Glow's `Affine("sigmoid")`). Its ActNorms initialize on their first training
    forward, like the flow's own.

    Deviation: the paper's code also pads the 3x3 convolutions' inputs with an extra channel marking
    the border ("edge bias"); here padding is plain zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 512):
        super().__init__(
            _conv(in_channels, hidden_channels, 3),
            ActNorm(hidden_channels),
            nn.ReLU(),
            _conv(hidden_channels, hidden_channels, 1),
            ActNorm(hidden_channels),
            nn.ReLU(),
            ZeroConv2d(hidden_channels, out_channels),
        )


class GlowPrior(nn.Module):
    """The learned prior on a split: the factored-out half x ~ N(mean, exp(log_std)^2) elementwise,
    (mean, log_std) = ZeroConv2d(context) from the kept half (C_kept -> 2 * C_factored channels,
    mean first), the standard normal at initialization.

    A conditioner for `Coupling(torch.zeros(C_factored, H, W, dtype=torch.bool), GlowPrior(...),
    Affine("exp"))` (a `MultiScale` split transform): it ignores the (all-masked) input and returns
    raw = -log_std and t = -mean * exp(-log_std), so the coupling's y = x * exp(raw) + t is
    (x - mean) * exp(-log_std), with log-det -sum(log_std); with the standard normal base this is
    exactly the log-density of N(mean, exp(log_std)^2).
    """

    def __init__(self, kept_channels: int, factored_channels: int):
        super().__init__()
        self.net = ZeroConv2d(kept_channels, 2 * factored_channels)

    def mean_log_std(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the factored half, each [B, C_factored, H, W]."""
        mean, log_std = self.net(context).chunk(2, dim=1)
        return mean, log_std

    def forward(self, masked: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.mean_log_std(context)
        return torch.cat([-log_std, -mean * torch.exp(-log_std)], dim=1)
