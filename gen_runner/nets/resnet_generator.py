"""CycleGAN's ResNet generator (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation
using Cycle-Consistent Adversarial Networks", appendix 7.2), after Johnson, Alahi & Fei-Fei 2016:

    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-C, tanh

c7s1-k: 7x7 conv, stride 1, k filters; dk: 3x3 conv, stride 2; Rk: a residual block of two 3x3
convs; uk: 3x3 fractional-strided conv, stride 1/2. Every conv but the last is followed by instance
norm and ReLU (the second conv of a residual block by instance norm alone). Reflection padding
everywhere, as the paper says, to reduce artifacts; 6 blocks for 128x128 images, 9 for 256x256 and
more. Weights N(0, 0.02) as the authors' code.

`base_channels` (64 in the paper) and `num_downsampling` (2 in the paper) scale the net down for
tiny images (8x8 digits: one downsampling keeps a 4x4 map for instance norm to normalise).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ResnetBlock", "ResnetGenerator", "resnet_generator"]


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, padding_mode="reflect")


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [_conv(c_in, c_out, kernel, stride), nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]


class ResnetBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))), reflection padded, channel count preserved."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_norm_relu(channels, channels, 3), _conv(channels, channels, 3),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Sequential):
    """Images [B, C_in, H, W] in [-1, 1] -> [B, C_out, H, W] in [-1, 1]; H and W divisible by
    2^num_downsampling."""

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 64, num_blocks: int = 9,
                 num_downsampling: int = 2):
        if num_blocks < 1 or num_downsampling < 0:
            raise ValueError(f"num_blocks={num_blocks}, num_downsampling={num_downsampling}: "
                             "give at least one residual block and no negative downsampling")
        c = base_channels
        layers = _conv_norm_relu(in_channels, c, 7)
        for _ in range(num_downsampling):  # dk
            layers += _conv_norm_relu(c, 2 * c, 3, stride=2)
            c *= 2
        layers += [ResnetBlock(c) for _ in range(num_blocks)]
        for _ in range(num_downsampling):  # uk
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(c // 2), nn.ReLU(inplace=True)]
            c //= 2
        layers += [_conv(c, out_channels, 7), nn.Tanh()]
        super().__init__(*layers)
        self.factor = 2 ** num_downsampling
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"the ResNet generator downsamples by {self.factor}: image sides {tuple(x.shape[-2:])} "
                             f"must be multiples of {self.factor}")
        return super().forward(x)



def resnet_generator(input_shape: Sequence[int], data_shape: Sequence[int], base_channels: int = 64,
                     num_blocks: int = 9, num_downsampling: int = 2) -> ResnetGenerator:
    """The generator from `input_shape` to `data_shape` (C, H, W) images of the same size."""
    if tuple(input_shape[1:]) != tuple(data_shape[1:]):
        raise ValueError(f"the ResNet generator keeps the image size: {tuple(input_shape)} -> {tuple(data_shape)}; "
                         "give both domains the same size (data.size / data.crop_size)")
    return ResnetGenerator(input_shape[0], data_shape[0], base_channels, num_blocks, num_downsampling)
