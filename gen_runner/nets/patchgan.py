"""pix2pix's PatchGAN discriminator (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", sec. 3.2.2 and appendix 6.1.2).

D classifies each N x N patch of an image as real or fake: a fully convolutional stack whose output
map holds one logit per patch, N being the receptive field of an output unit. The paper's stacks
(Ck: 4x4 Convolution-Norm-LeakyReLU(0.2) with k filters, no norm on the first C64; the last layer
a convolution to one channel):

    patch=1     PixelGAN   C64-C128, every convolution 1x1
    patch=16    PatchGAN   C64-C128
    patch=70    PatchGAN   C64-C128-C256-C512 (the paper's default)
    patch=286   ImageGAN   C64-C128-C256-C512-C512-C512
    patch=full  the smallest of these stacks (C64-C128-..., widths capped at 512) whose patch covers
                the whole image, as the paper's 286x286 ImageGAN covers its 256x256 images

Strides as the paper's code (`NLayerDiscriminator`): every layer but the last two of a stack has
stride 2, the last two stride 1 (padding 1 throughout), so the patch sizes above are exact:
`receptive_field` computes a built net's patch from its layers, `output_size` its map's size.
pix2pix's D is conditional: it sees the input image and the (real or generated) output
concatenated along the channels (`conditional=True`); CycleGAN's judges the output alone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.dcgan import dcgan_init
from gen_runner.nets.norm import norm2d

__all__ = ["PATCHES", "PatchGAN", "patchgan", "receptive_field", "output_size", "layers_for_patch"]

PATCHES = (1, 16, 70, 286, "full")
# Patch size -> the paper's number of C layers (all with 4x4 filters but the PixelGAN's).
_STACKS = {16: 2, 70: 4, 286: 6}


def _convs(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def receptive_field(net: nn.Module) -> int:
    """The side of the input patch one output unit sees, from the net's convolutions (in order):
    r <- (r - 1) * stride + kernel, from the output back to the input."""
    r = 1
    for conv in reversed(_convs(net)):
        r = (r - 1) * conv.stride[0] + (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
    return r


def output_size(net: nn.Module, side: int) -> int:
    """The side of the output map for an input of `side` pixels, from the net's convolutions."""
    for conv in _convs(net):
        side = (side + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
    return side


def _field(layers: int) -> int:
    """The patch of a stack of `layers` C layers (strides 2, ..., 2, 1) and the stride-1 output layer."""
    r = 1
    for stride in reversed([2] * (layers - 1) + [1, 1]):
        r = (r - 1) * stride + 4
    return r


def layers_for_patch(patch: int | str, side: int) -> int:
    """The number of C layers for `patch` (1, 16, 70, 286 or "full") on images of `side` pixels."""
    if patch == "full":
        layers = 2
        while _field(layers) < side:
            layers += 1
        return layers
    if patch == 1:
        return 2
    if patch not in _STACKS:
        raise ValueError(f"model.discriminator.patch={patch!r}: choose one of {', '.join(map(str, PATCHES))}")
    return _STACKS[patch]


class PatchGAN(nn.Module):
    """images [B, in_channels, H, W] in [-1, 1] -> logits [B, 1, h, w], one per patch."""

    def __init__(self, in_channels: int, layers: int, base_channels: int = 64, norm: str = "batch",
                 pixel: bool = False):
        super().__init__()
        kernel, pad = (1, 0) if pixel else (4, 1)
        widths = [base_channels * min(2**i, 8) for i in range(layers)]
        bias = norm != "batch"
        body: list[nn.Module] = []
        for i, width in enumerate(widths):
            stride = 1 if pixel or i == layers - 1 else 2
            body += [nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, kernel, stride, pad,
                               bias=bias or i == 0),
                     *([] if i == 0 else [norm2d(norm, width)]), nn.LeakyReLU(0.2, True)]
        body.append(nn.Conv2d(widths[-1], 1, kernel, 1, pad))
        self.net = nn.Sequential(*body)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patchgan(input_shape: Sequence[int], data_shape: Sequence[int], patch: int | str = 70, base_channels: int = 64,
             norm: str = "batch", conditional: bool = True) -> PatchGAN:
    """A PatchGAN judging `data_shape` images, with the `input_shape` input concatenated if
    `conditional`; one line if its output map would be empty at this image size."""
    side = min(data_shape[1:])
    net = PatchGAN(data_shape[0] + (input_shape[0] if conditional else 0), layers_for_patch(patch, side),
                   base_channels, norm, pixel=patch == 1)
    if output_size(net, side) < 1:
        raise ValueError(f"model.discriminator.patch={patch} needs larger images than {side}x{side} (its output map "
                         "would be empty): pick a smaller patch (1, 16) or patch=full")
    return net
