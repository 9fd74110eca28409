"""pix2pix's U-Net generator (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", sec. 3.2.1 and appendix 6.1.1; Ronneberger et al. 2015's skips).

Every layer is a 4x4 convolution with stride 2 (Ck: Convolution-Norm-ReLU with k filters; CDk
adds dropout 0.5). For 256x256 images the paper's encoder is C64-C128-C256-C512-C512-C512-C512-C512,
down to a 1x1 bottleneck, with LeakyReLU(0.2) and no normalization in the first layer; the decoder
mirrors it, CD512-CD512-CD512-C512-C256-C128-C64 with ReLUs, each decoder layer reading the
previous one's output concatenated with the encoder layer of the same size (the skips), then a
last transposed convolution to the output channels and a tanh.

- Depth adapts to the image size: log2(side) stride-2 layers reach a 1x1 bottleneck (8 at 256x256,
  the paper's; 3 at 8x8), the widths base_channels * (1, 2, 4, 8, 8, ...) capped at 8x.
- Dropout (p = 0.5) in the first three decoder layers is the paper's only noise z, and it stays on
  at test time (sec. 3.1: "we provide noise only in the form of dropout ... at both training and
  test time"), so `eval()` does not turn it off; `batch` norm uses the test batch's statistics
  (gen_runner/nets/norm.py). Nets of depth < 4 have fewer than three decoder layers before the
  output layer: each of them gets dropout.
- As the paper's code (not its text), the 1x1 bottleneck layer has no normalization (BatchNorm of a
  1x1 map of one example is zero).
- Weights from N(0, 0.02), as the paper (appendix 6.2).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.nets.dcgan import dcgan_init
from gen_runner.nets.norm import norm2d

__all__ = ["UNet", "unet", "unet_depth"]

DROPOUT = 0.5
DROPOUT_LAYERS = 3


def unet_depth(height: int, width: int) -> int:
    """The number of stride-2 layers down to a 1x1 bottleneck; one line if the size does not halve to 1."""
    side = min(height, width)
    depth = int(math.log2(side)) if side >= 2 else 0
    if height != width or 2 ** depth != side:
        raise ValueError(f"the U-Net halves the image down to 1x1: it needs square images of side 2^k "
                         f"(8, 16, 32, ..., 256), got {height}x{width}")
    return depth


class _Dropout(nn.Module):
    """Dropout that is on in training and at test time (pix2pix's noise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, DROPOUT, training=True)


class UNet(nn.Module):
    """images [B, C_in, S, S] in [-1, 1] -> images [B, C_out, S, S] in [-1, 1], S = 2^depth."""

    def __init__(self, in_channels: int, out_channels: int, side: int, base_channels: int = 64,
                 norm: str = "batch", dropout: bool = True):
        super().__init__()
        depth = unet_depth(side, side)
        widths = [base_channels * min(2**i, 8) for i in range(depth)]
        bias = norm != "batch"  # BatchNorm's shift replaces the bias, as the paper's code
        down: list[nn.Module] = []
        for i, width in enumerate(widths):
            first, bottleneck = i == 0, i == depth - 1
            down.append(nn.Sequential(
                *([] if first else [nn.LeakyReLU(0.2, True)]),
                nn.Conv2d(in_channels if first else widths[i - 1], width, 4, 2, 1, bias=bias or first or bottleneck),
                *([] if first or bottleneck else [norm2d(norm, width)])))
        up: list[nn.Module] = []
        for j in range(depth - 1):  # decoder layer j reads encoder layer depth-1-j (and its skip) -> depth-2-j's size
            source, width = widths[depth - 1 - j], widths[depth - 2 - j]
            up.append(nn.Sequential(
                nn.ReLU(True),
                nn.ConvTranspose2d(source * (1 if j == 0 else 2), width, 4, 2, 1, bias=bias),
                norm2d(norm, width),
                *([_Dropout()] if dropout and j < DROPOUT_LAYERS else [])))
        self.down, self.up = nn.ModuleList(down), nn.ModuleList(up)
        self.out = nn.Sequential(nn.ReLU(True),
                                 nn.ConvTranspose2d(widths[0] * (2 if depth > 1 else 1), out_channels, 4, 2, 1),
                                 nn.Tanh())
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first decoder layer directly
        for layer in self.up:
            x = layer(x)
            x = torch.cat([x, skips.pop()], 1)
        return self.out(x)


def unet(input_shape: Sequence[int], data_shape: Sequence[int], base_channels: int = 64, norm: str = "batch",
         dropout: bool = True) -> UNet:
    """The U-Net for input images of `input_shape` and outputs of `data_shape` (same size)."""
    if tuple(input_shape[1:]) != tuple(data_shape[1:]):
        raise ValueError(f"the U-Net maps an image to one of the same size; the data pairs {tuple(input_shape)} "
                         f"inputs with {tuple(data_shape)} targets")
    return UNet(input_shape[0], data_shape[0], data_shape[1], base_channels, norm, dropout)
