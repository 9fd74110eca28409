"""SRGAN's nets (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", fig. 4).

`SRResNet`, the generator: a 9x9 conv (64) + PReLU; `num_blocks` (16) residual blocks, each
conv3x3-BN-PReLU-conv3x3-BN plus the skip; a conv3x3-BN joined by a skip from before the blocks;
one sub-pixel block per factor 2 of upscaling (conv3x3 to 256 = 64 * 2^2 channels, PixelShuffle(2)
(Shi et al. 2016), PReLU); a 9x9 conv to the image's channels.

`SRGANDiscriminator`: eight 3x3 convs, 64 -> 512 channels, doubling every second conv, strides
alternating 1, 2; BN on all but the first; LeakyReLU(0.2); then dense 1024, LeakyReLU(0.2), dense 1
(a logit: the sigmoid lives in the loss). The dense layer's input size follows the image size.

Deviations: the generator ends in tanh (the paper does not name its output nonlinearity; its HR
images are in [-1, 1]), and `base_channels` (64 in the paper) scales both nets down for CPU runs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["SRResNet", "SRGANDiscriminator", "upsampling_blocks", "srresnet", "srgan_discriminator"]


class _Residual(nn.Module):
    """x + BN(conv(PReLU(BN(conv(x)))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.PReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def upsampling_blocks(channels: int, factor: int) -> nn.Sequential:
    """log2(factor) sub-pixel blocks: conv3x3 to 4x the channels, PixelShuffle(2) (each output pixel
    (2i + a, 2j + b) of channel c reads input channel 4c + 2a + b at (i, j)), PReLU."""
    if factor < 2 or factor & (factor - 1):
        raise ValueError(f"SRResNet upsamples by powers of 2: the target is {factor}x the input; "
                         "use data whose target side is 2, 4, 8, ... times its input side")
    blocks = [nn.Sequential(nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.PReLU())
              for _ in range(int(math.log2(factor)))]
    return nn.Sequential(*blocks)


class SRResNet(nn.Module):
    """Low-resolution images [B, C, h, w] in [-1, 1] -> [B, C, factor h, factor w] in [-1, 1]."""

    def __init__(self, channels: int, factor: int, base_channels: int = 64, num_blocks: int = 16):
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks={num_blocks}: SRResNet needs at least one residual block (the paper: 16)")
        c = base_channels
        self.head = nn.Sequential(nn.Conv2d(channels, c, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[_Residual(c) for _ in range(num_blocks)],
                                    nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.upsample = upsampling_blocks(c, factor)
        self.tail = nn.Sequential(nn.Conv2d(c, channels, 9, padding=4), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(self.upsample(h + self.blocks(h)))


class SRGANDiscriminator(nn.Module):
    """Images [B, C, H, W] -> a logit per image."""

    def __init__(self, data_shape: Sequence[int], base_channels: int = 64, hidden: int = 1024):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = data_shape[0], list(data_shape[1:])
        for i in range(8):
            c_out, stride = base_channels * 2 ** (i // 2), 1 + i % 2
            layers += [nn.Conv2d(c_in, c_out, 3, stride, padding=1), *([nn.BatchNorm2d(c_out)] if i else []),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_in, side = c_out, [(s - 1) // stride + 1 for s in side]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side[0] * side[1], hidden),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def srresnet(input_shape: Sequence[int], data_shape: Sequence[int], base_channels: int = 64,
             num_blocks: int = 16) -> SRResNet:
    """The generator from (C, h, w) inputs to (C, H, W) targets, H / h = W / w a power of 2."""
    factor = data_shape[1] // input_shape[1]
    if input_shape[0] != data_shape[0] or tuple(data_shape[1:]) != (factor * input_shape[1], factor * input_shape[2]):
        raise ValueError(f"SRResNet upscales both sides by one factor and keeps the channels: {tuple(input_shape)} -> "
                         f"{tuple(data_shape)} is not such a pair (use super-resolution data: sr4, paired_folder)")
    return SRResNet(input_shape[0], factor, base_channels, num_blocks)


def srgan_discriminator(input_shape: Sequence[int], data_shape: Sequence[int], base_channels: int = 64,
                        hidden: int = 1024) -> SRGANDiscriminator:
    """SRGAN's D on `data_shape` (high-resolution) images; it does not see the input."""
    return SRGANDiscriminator(data_shape, base_channels, hidden)
