"""The context encoder's nets (Pathak, Krähenbühl, Donahue, Darrell & Efros 2016, "Context Encoders:
Feature Learning by Inpainting", sec. 3.1 and 3.2).

G is an encoder-decoder: a convolutional encoder (4x4 stride-2 convolutions, BatchNorm but on the
first layer, LeakyReLU(0.2); the paper's DCGAN-like encoder of its inpainting results) down to m
feature maps of 4x4; a channel-wise fully connected layer (each feature map fully connected to
itself, m n^4 weights instead of a full layer's m^2 n^4, no cross-channel connections) followed by
a stride-1 (1x1) convolution that mixes the channels; and a decoder of 4x4 stride-2 transposed
convolutions (BatchNorm, ReLU) up to the image, with a tanh. The widths double from base_channels
per layer, capped at 8x; depth adapts to the image size (log2(side) - 2 layers each way).
D is DCGAN's discriminator (gen_runner/nets/dcgan.py), as the paper's adversarial loss.

Deviation: the paper's decoder for the central region outputs that region alone (64x64 of a
128x128 image); here it outputs the whole image and the losses read the region (and the
prediction is pasted into the context), which also serves random masks without a change.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.dcgan import DCGANDiscriminator, dcgan_init

__all__ = ["ChannelwiseFC", "ContextEncoder", "context_encoder", "context_discriminator"]

BOTTLENECK = 4  # the encoder's maps are 4x4, as the paper's 128x128 encoder


class ChannelwiseFC(nn.Module):
    """[B, m, n, n] -> [B, m, n, n]: map k is fully connected to map k alone (weights [m, n^2, n^2])."""

    def __init__(self, channels: int, side: int):
        super().__init__()
        size = side * side
        self.weight = nn.Parameter(torch.empty(channels, size, size).uniform_(-size**-0.5, size**-0.5))
        self.bias = nn.Parameter(torch.zeros(channels, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bci,cij->bcj", x.flatten(2), self.weight) + self.bias
        return out.view_as(x)


class ContextEncoder(nn.Module):
    """images [B, C, S, S] in [-1, 1] (the hole filled) -> images [B, C, S, S] in [-1, 1]."""

    def __init__(self, channels: int, side: int, base_channels: int = 64):
        super().__init__()
        depth = int(math.log2(side // BOTTLENECK)) if side >= 2 * BOTTLENECK else 0
        if depth < 1 or BOTTLENECK * 2**depth != side:
            raise ValueError(f"the context encoder halves the image down to {BOTTLENECK}x{BOTTLENECK}: it needs "
                             f"square images of side 4 * 2^k (8, 16, 32, ..., 128), got {side}")
        widths = [base_channels * min(2**i, 8) for i in range(depth)]
        encoder: list[nn.Module] = []
        for i, width in enumerate(widths):
            encoder += [nn.Conv2d(channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=i == 0),
                        *([] if i == 0 else [nn.BatchNorm2d(width)]), nn.LeakyReLU(0.2, True)]
        bottleneck = [ChannelwiseFC(widths[-1], BOTTLENECK), nn.Conv2d(widths[-1], widths[-1], 1), nn.ReLU(True)]
        decoder: list[nn.Module] = []
        for i in reversed(range(1, depth)):
            decoder += [nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, bias=False),
                        nn.BatchNorm2d(widths[i - 1]), nn.ReLU(True)]
        decoder += [nn.ConvTranspose2d(widths[0], channels, 4, 2, 1), nn.Tanh()]
        self.encoder, self.bottleneck = nn.Sequential(*encoder), nn.Sequential(*bottleneck)
        self.decoder = nn.Sequential(*decoder)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.bottleneck(self.encoder(x)))


def context_encoder(input_shape: Sequence[int], data_shape: Sequence[int], base_channels: int = 64) -> ContextEncoder:
    if tuple(input_shape) != tuple(data_shape) or data_shape[1] != data_shape[2]:
        raise ValueError(f"the context encoder fills holes in square images: inputs and targets of one shape, got "
                         f"{tuple(input_shape)} and {tuple(data_shape)}")
    return ContextEncoder(data_shape[0], data_shape[1], base_channels)


def context_discriminator(input_shape: Sequence[int], data_shape: Sequence[int],
                          base_channels: int = 64) -> DCGANDiscriminator:
    """DCGAN's D on the (filled) images; the context encoder's D does not see the input."""
    return DCGANDiscriminator(data_shape, base_channels)
