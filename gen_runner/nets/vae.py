"""A VAE's encoder x -> features h and decoder z -> Bernoulli logits of every pixel.

- `kind="mlp"` (the default, laptop scale): fully connected layers on the flattened image, the
  decoder's hidden widths the encoder's reversed, as the MLP VAEs of Kingma & Welling 2014
  ("Auto-Encoding Variational Bayes") and Rezende & Mohamed 2015 ("Variational Inference with
  Normalizing Flows").
- `kind="gated_conv"`: the gated convolutional nets of van den Berg, Hasenclever, Tomczak & Welling
  2018 ("Sylvester Normalizing Flows for Variational Inference"), as in their code for binary MNIST:
  each layer h(x) * sigmoid(g(x)) of two convolutions; the encoder 32-32-64-64-64 maps of 5x5 kernels
  (stride 2 in the second and fourth), then a convolution over the remaining H/4 x W/4 map to 256
  features; the decoder the mirror image with transposed convolutions, then a 1x1 convolution to
  the logits. Images of any side divisible by 4 (28: the paper's 7x7 last kernel).

The encoder's `out_features` is the width of h, from which the posterior (gen_runner/vae/posteriors.py)
computes its Gaussian and its flow's parameters.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.mlp import MLP, hidden_layers

__all__ = ["encoder", "decoder", "GatedConv", "GatedConvEncoder", "GatedConvDecoder"]

KINDS = ("mlp", "gated_conv")


def _check(kind: str, data_shape: Sequence[int]) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: choose {' or '.join(KINDS)}")
    if kind == "gated_conv" and (len(data_shape) != 3 or data_shape[1] % 4 or data_shape[2] % 4):
        raise ValueError(f"kind=gated_conv takes images of sides divisible by 4, not examples of shape "
                         f"{tuple(data_shape)}; use kind=mlp")


class GatedConv(nn.Module):
    """h(x) * sigmoid(g(x)), h and g two (transposed) convolutions of the same shape (Dauphin et al. 2017)."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride: int = 1, padding: int = 0,
                 output_padding: int = 0, transposed: bool = False):
        super().__init__()
        if transposed:
            def conv():
                return nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding, output_padding)
        else:
            def conv():
                return nn.Conv2d(in_channels, out_channels, kernel, stride, padding)
        self.h, self.g = conv(), conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class GatedConvEncoder(nn.Sequential):
    out_features = 256

    def __init__(self, data_shape: Sequence[int]):
        c, h, w = data_shape
        super().__init__(GatedConv(c, 32, 5, 1, 2), GatedConv(32, 32, 5, 2, 2), GatedConv(32, 64, 5, 1, 2),
                         GatedConv(64, 64, 5, 2, 2), GatedConv(64, 64, 5, 1, 2),
                         GatedConv(64, self.out_features, (h // 4, w // 4)), nn.Flatten())


class GatedConvDecoder(nn.Sequential):
    def __init__(self, data_shape: Sequence[int], latent_dim: int):
        c, h, w = data_shape
        super().__init__(nn.Unflatten(1, (latent_dim, 1, 1)),
                         GatedConv(latent_dim, 64, (h // 4, w // 4), transposed=True),
                         GatedConv(64, 64, 5, 1, 2, transposed=True),
                         GatedConv(64, 32, 5, 2, 2, 1, transposed=True),
                         GatedConv(32, 32, 5, 1, 2, transposed=True),
                         GatedConv(32, 32, 5, 2, 2, 1, transposed=True),
                         GatedConv(32, 32, 5, 1, 2, transposed=True),
                         nn.Conv2d(32, c, 1))


class MLPEncoder(nn.Sequential):
    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int], activation: str):
        super().__init__(nn.Flatten(), *hidden_layers(math.prod(data_shape), hidden, activation))
        self.out_features = hidden[-1]


def encoder(data_shape: Sequence[int], kind: str = "mlp", hidden: Sequence[int] = (256, 256),
            activation: str = "elu") -> nn.Module:
    """x [B, C, H, W] (binary pixels as floats) -> h [B, out_features]. `hidden`, `activation`: kind=mlp's."""
    _check(kind, data_shape)
    if kind == "gated_conv":
        return GatedConvEncoder(data_shape)
    if not hidden:
        raise ValueError("the encoder needs at least one hidden layer: its last one is the features h")
    return MLPEncoder(data_shape, hidden, activation)


def decoder(data_shape: Sequence[int], latent_dim: int, kind: str = "mlp", hidden: Sequence[int] = (256, 256),
            activation: str = "elu") -> nn.Module:
    """z [N, latent_dim] -> Bernoulli logits [N, C, H, W]. kind=mlp: `hidden` widths (give the
    encoder's reversed for the mirror image)."""
    _check(kind, data_shape)
    if kind == "gated_conv":
        return GatedConvDecoder(data_shape, latent_dim)
    return nn.Sequential(MLP(latent_dim, math.prod(data_shape), hidden, activation),
                         nn.Unflatten(1, tuple(data_shape)))
