"""DCGAN generator and discriminator (Radford, Metz & Chintala 2015).

The paper's guidelines: strided convolutions instead of pooling, transposed convolutions to
upsample, BatchNorm in both nets except G's output and D's input layer, ReLU in G with a tanh
output, LeakyReLU(0.2) in D, no fully connected hidden layers, weights drawn from N(0, 0.02).

The nets adapt to the image size: an image of side s = s0 * 2^k (s0 in [4, 8) as in the paper's
64 = 4 * 16, 32 = 4 * 8, 28 = 7 * 4; s0 in [2, 4) for images smaller than 16, so 8 = 2 * 4 still
gets two stride-2 layers) is reached from an s0 x s0 map by k stride-2 layers whose channels
halve from base_channels * 2^(k-1) down to base_channels.

D can look across the minibatch (gen_runner/nets/minibatch.py), against mode collapse:
`minibatch="stddev"` appends Karras et al.'s minibatch standard-deviation channel to the s0 x s0
map before the output convolution; `minibatch="discrimination"` runs Salimans et al.'s minibatch
discrimination on the flattened s0 x s0 map, and a linear output layer reads the map and the
layer's `num_kernels` outputs (the paper's place for it: on D's last features, before its output).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.minibatch import MinibatchDiscrimination, MinibatchStdDev

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_init"]


def _layout(data_shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, s0, k) with side = s0 * 2^k, s0 as small as allowed (4, or 2 below 16 pixels)."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise ValueError(f"DCGAN needs square images (C, H, H), got data of shape {tuple(data_shape)}; "
                         "use model=gan for points")
    c, side = data_shape[0], data_shape[1]
    smallest = 4 if side >= 16 else 2
    k = 0
    while side % 2 == 0 and side // 2 >= smallest:
        side, k = side // 2, k + 1
    if k == 0:
        raise ValueError(f"DCGAN needs images of side s0 * 2^k (e.g. 8, 28, 32, 64), got {data_shape[1]}")
    return c, side, k


def dcgan_init(module: nn.Module) -> None:
    """The paper's initialisation: conv (and linear) weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z [B, latent_dim] -> images [B, C, H, W] in [-1, 1]."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], base_channels: int = 64):
        super().__init__()
        c, s0, k = _layout(data_shape)
        width = base_channels * 2 ** (k - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, s0, 1, 0, bias=False),  # project z to s0 x s0
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # over (C, H, W) per example: WGAN-GP's recommended replacement for BatchNorm
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}: choose batch, layer or none")


class DCGANDiscriminator(nn.Module):
    """images [B, C, H, W] in [-1, 1] -> one logit per image ([B]), or `out_features` outputs per
    image ([B, out_features]: an encoder x -> z built the same way, as BiGAN's and ALI's are).

    `norm="layer"` or `"none"` replaces the hidden layers' BatchNorm (a critic with a gradient
    penalty must not normalise across the batch). `minibatch`: "stddev", "discrimination" (B =
    `num_kernels`, C = `kernel_dim`) or None, as the module docstring says; `minibatch_stddev=True`
    is the older spelling of `minibatch="stddev"`, kept for existing configs and checkpoints."""

    def __init__(self, data_shape: Sequence[int], base_channels: int = 64, norm: str = "batch",
                 minibatch_stddev: bool = False, out_features: int = 1, minibatch: str | None = None,
                 num_kernels: int = 100, kernel_dim: int = 5):
        super().__init__()
        if minibatch_stddev:
            if minibatch not in (None, "stddev"):
                raise ValueError(f"minibatch_stddev=true and minibatch={minibatch!r}: set minibatch alone")
            minibatch = "stddev"
        if minibatch not in (None, "stddev", "discrimination"):
            raise ValueError(f"minibatch={minibatch!r}: choose discrimination, stddev or null")
        c, s0, k = _layout(data_shape)
        width = base_channels
        layers: list[nn.Module] = [nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no BN on the input
        for _ in range(k - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"), _norm(norm, width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        if minibatch == "discrimination":  # on the flattened s0 x s0 map; a linear layer reads it and o(x)
            features = width * s0 * s0
            layers += [nn.Flatten(), MinibatchDiscrimination(features, num_kernels, kernel_dim, features**-0.5),
                       nn.Linear(features + num_kernels, out_features)]
        else:
            if minibatch == "stddev":
                layers.append(MinibatchStdDev())
            layers.append(nn.Conv2d(width + (minibatch == "stddev"), out_features, s0, 1, 0))  # s0 x s0 map -> outputs
        self.net = nn.Sequential(*layers)
        self.out_features = out_features
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).flatten(1)
        return out.squeeze(1) if self.out_features == 1 else out
