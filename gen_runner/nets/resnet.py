"""Convolutional residual network used as the conditioner of image coupling layers, as in RealNVP
(Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP", sec. 4.1): pre-activation
residual blocks (He et al. 2016) with batch normalization and weight normalization (Salimans &
Kingma 2016), all convolutions 3x3 with padding that preserves height and width."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm

__all__ = ["ResNet", "ResidualBlock"]


def _conv3x3(in_channels: int, out_channels: int, weight_norm: bool) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    return apply_weight_norm(conv) if weight_norm else conv


class ResidualBlock(nn.Module):
    """x + conv(relu(bn(conv(relu(bn(x)))))), channel count preserved."""

    def __init__(self, channels: int, batch_norm: bool = True, weight_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers += [nn.ReLU(), _conv3x3(channels, channels, weight_norm)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Sequential):
    """3x3 conv in, `num_blocks` residual blocks, batch norm and ReLU, 3x3 conv out.

    `weight_norm` reparametrises every convolution but the output one; `zero_last` initialises the
    output convolution to zero, so a coupling layer using this network starts as the identity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_blocks: int = 4,
        batch_norm: bool = True,
        weight_norm: bool = True,
        zero_last: bool = True,
    ):
        layers: list[nn.Module] = [_conv3x3(in_channels, hidden_channels, weight_norm)]
        layers += [ResidualBlock(hidden_channels, batch_norm, weight_norm) for _ in range(num_blocks)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(hidden_channels))
        layers.append(nn.ReLU())
        last = nn.Conv2d(hidden_channels, out_channels, 3, padding=1)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)
