"""Equalized learning rate layers and pixelwise feature normalization (Karras, Aila, Laine &
Lehtinen 2018, "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
sec. 4.1 and 4.2), shared by ProGAN and StyleGAN.

Equalized learning rate (sec. 4.1): a weight is stored as w ~ N(0, 1) and scaled at every forward
pass by He's constant c = gain / sqrt(fan_in) (gain sqrt(2) for layers followed by a (leaky) ReLU,
1 for linear outputs), so the effective weight c * w has He's standard deviation while the stored
parameter's scale, and so Adam's per-parameter step relative to it, is the same for every layer.

`lr_multiplier` (StyleGAN, Karras, Laine & Aila 2019, sec. 2 and its code's `lrmul`: 0.01 in the
mapping network) lowers a layer's learning rate: the weight is stored as N(0, 1 / lr_multiplier^2)
and scaled by c * lr_multiplier (the same effective weight at initialisation, an lr_multiplier
times smaller effective step), and the bias is stored divided by it and multiplied back at runtime.
`bias_init` is the effective bias at initialisation (StyleGAN's style affine layers start at 1).

Pixelwise feature normalization (sec. 4.2): b = a / sqrt(mean_over_channels(a^2) + 1e-8) at each
pixel, after each convolution in the generator. The minibatch standard-deviation layer (sec. 3) is
gen_runner/nets/minibatch.py's `MinibatchStdDev`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EqualizedLinear", "EqualizedConv2d", "PixelNorm"]


class _Equalized(nn.Module):
    """The stored weight, He's runtime scale and the (lr-scaled) bias of an equalized layer."""

    def __init__(self, shape: tuple[int, ...], fan_in: int, gain: float, lr_multiplier: float, bias: bool,
                 bias_init: float):
        super().__init__()
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier={lr_multiplier}: pass a value > 0")
        self.weight = nn.Parameter(torch.randn(shape) / lr_multiplier)
        self.weight_scale = gain / math.sqrt(fan_in) * lr_multiplier
        self.lr_multiplier = lr_multiplier
        self.bias = nn.Parameter(torch.full((shape[0],), bias_init / lr_multiplier)) if bias else None

    @property
    def effective_weight(self) -> torch.Tensor:
        """The weight the layer applies: the stored one times He's constant (and the lr multiplier)."""
        return self.weight * self.weight_scale

    @property
    def effective_bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.bias * self.lr_multiplier


class EqualizedLinear(_Equalized):
    """[N, in_features] -> [N, out_features]."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2), lr_multiplier: float = 1.0,
                 bias: bool = True, bias_init: float = 0.0):
        super().__init__((out_features, in_features), in_features, gain, lr_multiplier, bias, bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight, self.effective_bias)


class EqualizedConv2d(_Equalized):
    """[N, in_channels, H, W] -> [N, out_channels, H, W] ('same' padding, stride 1, as the paper's)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2),
                 lr_multiplier: float = 1.0, bias: bool = True, bias_init: float = 0.0):
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size}: an odd size keeps the map's size")
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), in_channels * kernel_size**2, gain,
                         lr_multiplier, bias, bias_init)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight, self.effective_bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Each pixel's (or each row's) feature vector scaled to unit mean square over channels (dim 1)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
