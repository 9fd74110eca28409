"""RealNVP's multi-scale image flow (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using
Real NVP", sec. 3.6 and 4.1): checkerboard and channel-wise affine couplings around squeezes, half
the channels factored out per scale. RealNVP on vectors is `build.vector_flow` with
`structures.coupling(tanh_scale=True)` (configs/model/realnvp.yaml)."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from gen_runner.flows.distributions import StandardNormal
from gen_runner.flows.flow import Flow
from gen_runner.flows.multiscale import MultiScale
from gen_runner.flows.transforms.base import Compose, Transform
from gen_runner.flows.transforms.coupling import (
    Coupling,
    TanhLogScale,
    channel_mask,
    checkerboard_mask,
)
from gen_runner.flows.transforms.elementwise import Logit
from gen_runner.flows.transforms.reshape import Squeeze
from gen_runner.flows.transforms.univariate import Affine
from gen_runner.nets.resnet import ResNet

__all__ = ["realnvp_image"]


def realnvp_image(
    shape: Sequence[int],
    num_scales: int = 2,
    hidden_channels: int = 64,
    num_blocks: int = 4,
    normalization: Callable[[int], Transform] | None = None,
    logit_alpha: float | None = 0.05,
) -> Flow:
    """RealNVP's multi-scale flow for [B, C, H, W] images of dequantized pixels in [0, 1].

    With `logit_alpha` set, the `Logit` preprocessing comes first. Each scale but the last: 3 affine
    couplings with alternating checkerboard masks, a squeeze, 3 with alternating channel-wise masks,
    then half the channels are factored out to the base; the last scale: 4 checkerboard couplings.
    Conditioners are `ResNet`s (`num_blocks` residual blocks of `hidden_channels` maps, batch and
    weight normalization, zero-initialised output); `normalization`, a factory `(channels) -> Transform`
    such as `BatchNorm` (the paper's batch-normalization bijection, sec. 3.7), adds a layer after
    every coupling. H and W must be divisible by 2 ** (num_scales - 1).
    `Flow.forward` returns z flat, [B, C*H*W].

    Deviations: the paper's networks are larger (more residual blocks and feature maps, more scales
    on 32x32 and larger images); the defaults here suit small images such as 8x8 digits and MNIST.
    `Logit` and `BatchNorm` document their own small departures from the paper.
    """
    c, h, w = shape
    if num_scales < 1:
        raise ValueError(f"num_scales must be at least 1, got {num_scales}")
    factor = 2 ** (num_scales - 1)
    if h % factor or w % factor:
        raise ValueError(
            f"a {c}x{h}x{w} image cannot be squeezed {num_scales - 1} times: "
            f"H and W must be divisible by {factor}"
        )

    def couplings(masks: Iterable[torch.Tensor]) -> list[Transform]:
        layers: list[Transform] = []
        for mask in masks:
            channels = mask.shape[0]
            conditioner = nn.Sequential(ResNet(channels, 2 * channels, hidden_channels, num_blocks),
                                        TanhLogScale(channels))
            layers.append(Coupling(mask, conditioner, Affine()))
            if normalization is not None:
                layers.append(normalization(channels))
        return layers

    levels = []
    for _ in range(num_scales - 1):
        spatial = couplings(checkerboard_mask(c, h, w, i) for i in range(3))
        c, h, w = 4 * c, h // 2, w // 2
        channelwise = couplings(channel_mask(c, h, w, i) for i in range(3))
        levels.append(Compose(*spatial, Squeeze(), *channelwise))
        c //= 2
    levels.append(Compose(*couplings(checkerboard_mask(c, h, w, i) for i in range(4))))
    transform: Transform = MultiScale(levels, shape)
    if logit_alpha is not None:
        transform = Compose(Logit(logit_alpha), transform)
    return Flow(transform, StandardNormal(math.prod(shape)))
