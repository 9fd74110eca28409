"""Small layers shared by the flow tests: a univariate transformer inside a coupling or a MADE
layer, parameter perturbation, ActNorm initialization, one Glow step."""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.flows.transforms.autoregressive import MaskedAutoregressive
from gen_runner.flows.transforms.base import Compose, Transform
from gen_runner.flows.transforms.coupling import (
    Coupling,
    alternating_mask,
    channel_mask,
)
from gen_runner.flows.transforms.linear import InvertibleConv1x1
from gen_runner.flows.transforms.normalization import ActNorm
from gen_runner.flows.transforms.univariate import Affine, Univariate
from gen_runner.nets.glow import GlowConditioner
from gen_runner.nets.made import MADE, autoregressive_order
from gen_runner.nets.mlp import MLP


def coupling(transformer: Univariate) -> Coupling:
    """`transformer` coupling 4 features: 2 conditioning, 2 transformed."""
    return Coupling(alternating_mask(4, 0), MLP(2, 2 * transformer.num_params, hidden=(16,), zero_last=True),
                    transformer)


def autoregressive(transformer: Univariate) -> MaskedAutoregressive:
    """A MAF layer with `transformer` on 3 features."""
    return MaskedAutoregressive(MADE(autoregressive_order(3, "sequential"), [16], transformer.num_params),
                                transformer)


def perturb(module: nn.Module, std: float = 0.1) -> nn.Module:
    """Random parameters, so that zero-initialised layers are not the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn_like(p))
    return module


def channel_data(batch: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Samples whose channels (features) have different means and scales, for ActNorm to undo."""
    c = shape[0]
    view = (1, c) + (1,) * (len(shape) - 1)
    scale = torch.arange(1, c + 1, dtype=dtype).view(view)
    return torch.linspace(-2, 2, c, dtype=dtype).view(view) + scale * torch.randn(batch, *shape, dtype=dtype)


def initialized(transform: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """After one training forward, which initializes every ActNorm in it from data."""
    with torch.no_grad():
        transform.train()(channel_data(16, shape))
    return transform


def glow_step(channels: int, height: int, width: int) -> Transform:
    """One step of Glow's flow (fig. 2a): ActNorm, LU 1x1 convolution, affine coupling."""
    return Compose(
        ActNorm(channels),
        InvertibleConv1x1(channels, lu=True),
        Coupling(channel_mask(channels, height, width, 0), GlowConditioner(channels, 2 * channels, hidden_channels=8),
                 Affine("sigmoid")),
    )


def spread(shape: tuple[int, ...]) -> torch.Tensor:
    """N(0, 2^2): with a spline bound of 2, about a third of the elements fall in the identity tails."""
    return 2 * torch.randn(shape)
