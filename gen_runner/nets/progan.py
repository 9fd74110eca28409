"""The progressively grown generator and discriminator (Karras, Aila, Laine & Lehtinen 2018,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation", Table 2 and the
official code's G_paper / D_paper).

Every block from 4x4 up to the data's side is built at construction, so optimizers and
checkpoints hold every parameter from the first step; a forward pass runs the blocks up to the
phase's `resolution` and, while a new block fades in, blends it with the previous resolution's
path by `alpha` (gen_runner/gans/growing.py gives both):

- G: z -> pixel norm (z on the unit hypersphere, scaled) -> 4x4 block [dense to 4x4 maps, conv
  3x3] -> per doubling [nearest 2x upsampling, conv 3x3, conv 3x3]; each conv followed by leaky
  ReLU 0.2 and pixelwise feature normalization. toRGB (1x1 conv, linear) at every resolution; in a
  fade-in the output is (1 - alpha) * upsample(toRGB_old(h_old)) + alpha * toRGB_new(h_new).
- D: fromRGB (1x1 conv, leaky ReLU) at every resolution -> per halving [conv 3x3, conv 3x3, 2x2
  average pooling] -> 4x4 block [minibatch stddev (nets/minibatch.py), conv 3x3, dense, dense to 1
  (linear)]; in a fade-in the first block's output is blended with fromRGB_old(avgpool(x)) the
  same way. D reads the resolution from its input's size.

Channels: min(channel_base / resolution, max_channels); the paper's 16384 and 512 give 512 up to
32x32, then 256, 128, 64, 32, 16 at 64 ... 1024 (the code's fmap_base 8192 per stage). Every layer
is equalized (nets/equalized.py): gain sqrt(2), toRGB and D's output gain 1, and G's first dense
layer gain sqrt(2) / 4 as the official code ("to match the original Theano implementation").
Deviation: convolutions and up/down-sampling are not fused (the code's `fused_scale`, an
efficiency measure with the same function up to the filter's border).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.nets.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from gen_runner.nets.minibatch import MinibatchStdDev

__all__ = ["ProGANGenerator", "ProGANDiscriminator", "upsample", "resolutions"]


def resolutions(data_shape: Sequence[int]) -> list[int]:
    """[4, 8, ..., side] for square images of side 4 * 2^k."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2] or data_shape[1] < 4 or data_shape[1] & (
            data_shape[1] - 1):
        raise ValueError(f"ProGAN grows square images of side 4 * 2^k (8, 16, 32, ...), got data of shape "
                         f"{tuple(data_shape)}: set data.size")
    return [2**k for k in range(2, int(math.log2(data_shape[1])) + 1)]


def upsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def _conv(c_in: int, c_out: int, pixel_norm: bool) -> list[nn.Module]:
    return [EqualizedConv2d(c_in, c_out, 3), nn.LeakyReLU(0.2), *([PixelNorm()] if pixel_norm else [])]


class _Grown(nn.Module):
    """The shared layout: a block per resolution, channel counts, the index of a resolution."""

    def __init__(self, data_shape: Sequence[int], channel_base: int, max_channels: int):
        super().__init__()
        self.resolutions = resolutions(data_shape)
        self.channel_base, self.max_channels = channel_base, max_channels

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.max_channels)

    def level(self, resolution: int) -> int:
        if resolution not in self.resolutions:
            raise ValueError(f"resolution {resolution}: this net runs at {self.resolutions}")
        return self.resolutions.index(resolution)


class ProGANGenerator(_Grown):
    """z [B, latent_dim] -> images [B, C, r, r] at resolution r (default: the data's side)."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], channel_base: int = 16384,
                 max_channels: int = 512, normalize_latents: bool = True):
        super().__init__(data_shape, channel_base, max_channels)
        ch, c = self.channels, data_shape[0]
        first = [PixelNorm()] if normalize_latents else []
        first += [EqualizedLinear(latent_dim, 16 * ch(4), gain=math.sqrt(2) / 4), nn.Unflatten(1, (ch(4), 4, 4)),
                  nn.LeakyReLU(0.2), PixelNorm(), *_conv(ch(4), ch(4), True)]
        self.blocks = nn.ModuleList([nn.Sequential(*first)] + [
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv(ch(r // 2), ch(r), True),
                          *_conv(ch(r), ch(r), True)) for r in self.resolutions[1:]])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(ch(r), c, 1, gain=1.0) for r in self.resolutions])

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        level = self.level(resolution or self.resolutions[-1])
        h = previous = z
        for block in self.blocks[: level + 1]:
            previous, h = h, block(h)
        out = self.to_rgb[level](h)
        if alpha < 1 and level > 0:
            out = torch.lerp(upsample(self.to_rgb[level - 1](previous)), out, alpha)
        return out


class ProGANDiscriminator(_Grown):
    """images [B, C, r, r] at any resolution r of the schedule -> one score per image ([B])."""

    def __init__(self, data_shape: Sequence[int], channel_base: int = 16384, max_channels: int = 512,
                 minibatch_stddev: bool = True):
        super().__init__(data_shape, channel_base, max_channels)
        ch, c = self.channels, data_shape[0]
        self.from_rgb = nn.ModuleList([nn.Sequential(EqualizedConv2d(c, ch(r), 1), nn.LeakyReLU(0.2))
                                       for r in self.resolutions])
        last = [MinibatchStdDev()] if minibatch_stddev else []
        last += [*_conv(ch(4) + bool(minibatch_stddev), ch(4), False), nn.Flatten(),
                 EqualizedLinear(16 * ch(4), ch(2)), nn.LeakyReLU(0.2), EqualizedLinear(ch(2), 1, gain=1.0)]
        self.blocks = nn.ModuleList([nn.Sequential(*last)] + [
            nn.Sequential(*_conv(ch(r), ch(r), False), *_conv(ch(r), ch(r // 2), False), nn.AvgPool2d(2))
            for r in self.resolutions[1:]])

    def forward(self, x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        level = self.level(x.shape[-1])
        h = self.blocks[level](self.from_rgb[level](x))
        if alpha < 1 and level > 0:
            h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), h, alpha)
        for block in reversed(self.blocks[:level]):
            h = block(h)
        return h.squeeze(1)
