"""Autoencoder discriminators and the matching generator of BEGAN (Berthelot, Schumm & Metz 2017,
"BEGAN: Boundary Equilibrium Generative Adversarial Networks", sec. 3.5 and fig. 1).

The paper's discriminator is a convolutional autoencoder. Encoder: 3x3 convolutions with ELUs,
each repeated twice per scale, down-sampling by stride-2 convolutions while the filters grow
linearly (n, 2n, 3n, ...), then a fully connected layer, with no nonlinearity, to the embedding
h in R^Nh. Decoder: a fully connected layer from h to an n-channel map, then per scale two 3x3
convolutions with ELUs and nearest-neighbour up-sampling, and a last 3x3 convolution to the image.
The generator is the decoder's architecture with its own weights, fed z. Paper: Nh = Nz = 64.

Outputs are linear, with no tanh: the discriminator is scored on its L1 reconstruction of
pixels in [-1, 1], and a tanh reaches the background's -1 only asymptotically (its gradient
vanishing there); the generator's samples are clamped to the pixel range when decoded. This
follows fig. 1, whose last convolution has no activation.

The nets adapt to the image size like the DCGAN nets (`_layout`): side = s0 * 2^k is reached in
k scalings from an s0 x s0 map. Deviation: s0 is 4 (2 below 16 pixels) rather than the
paper's constant 8, so a 64x64 image gets one scale more. The paper's optional skip connections
(sec. 3.5.1) are left out. Points, and images the MLP way, get `MLPAutoencoder`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from gen_runner.nets.dcgan import _layout
from gen_runner.nets.mlp import MLP, MLPGenerator

__all__ = ["MLPAutoencoder", "ConvAutoencoder", "BEGANGenerator", "began_generator", "began_discriminator"]


def _conv_pair(in_channels: int, out_channels: int) -> list[nn.Module]:
    """One scale of the paper's nets: two 3x3 convolutions, each followed by an ELU."""
    return [nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.ELU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.ELU()]


class MLPAutoencoder(nn.Module):
    """An example (flattened) -> MLP encoder -> a code of `code_dim` -> MLP decoder (the hidden
    widths reversed) -> its reconstruction, of the input's shape; linear code and output."""

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int] = (256, 256), code_dim: int = 64,
                 activation: str = "elu"):
        super().__init__()
        dim = math.prod(data_shape)
        self.encoder = MLP(dim, code_dim, hidden, activation)
        self.decoder = MLP(code_dim, dim, tuple(reversed(hidden)), activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.flatten(1))).view_as(x)


class BEGANGenerator(nn.Module):
    """z [B, latent_dim] -> images [B, C, H, W] (linear output): the paper's decoder, with
    `channels` (n) maps at every scale. Also the decoder of `ConvAutoencoder`, fed its code."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], channels: int = 64):
        super().__init__()
        c, self.s0, k = _layout(data_shape)
        self.channels = channels
        self.project = nn.Linear(latent_dim, channels * self.s0 ** 2)
        layers: list[nn.Module] = []
        for scale in range(k + 1):
            layers += _conv_pair(channels, channels)
            if scale < k:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers.append(nn.Conv2d(channels, c, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(len(z), self.channels, self.s0, self.s0))


class ConvAutoencoder(nn.Module):
    """images [B, C, H, W] -> their reconstruction, same shape: the paper's encoder to a
    `code_dim` embedding, then a `BEGANGenerator` as the decoder."""

    def __init__(self, data_shape: Sequence[int], channels: int = 64, code_dim: int = 64):
        super().__init__()
        c, s0, k = _layout(data_shape)
        layers: list[nn.Module] = [nn.Conv2d(c, channels, 3, 1, 1), nn.ELU()]
        width = channels
        for scale in range(k + 1):
            layers += _conv_pair(width, width)
            if scale < k:  # sub-sample by 2, adding n filters
                layers += [nn.Conv2d(width, width + channels, 3, 2, 1), nn.ELU()]
                width += channels
        layers += [nn.Flatten(), nn.Linear(width * s0 ** 2, code_dim)]
        self.encoder = nn.Sequential(*layers)
        self.decoder = BEGANGenerator(code_dim, data_shape, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def began_generator(latent_dim: int, data_shape: Sequence[int], vector: Mapping | None = None,
                    image: Mapping | None = None) -> nn.Module:
    """`MLPGenerator(**vector)` for [D] points, `BEGANGenerator(**image)` for (C, H, W) images."""
    if len(data_shape) == 3:
        return BEGANGenerator(latent_dim, data_shape, **(image or {}))
    return MLPGenerator(latent_dim, data_shape, **(vector or {}))


def began_discriminator(data_shape: Sequence[int], vector: Mapping | None = None,
                        image: Mapping | None = None) -> nn.Module:
    """`MLPAutoencoder(**vector)` for [D] points, `ConvAutoencoder(**image)` for (C, H, W) images."""
    if len(data_shape) == 3:
        return ConvAutoencoder(data_shape, **(image or {}))
    return MLPAutoencoder(data_shape, **(vector or {}))
