"""Dequantization of discrete pixels for flows on images: uniform noise (Theis, van den Oord &
Bethge 2016, "A note on the evaluation of generative models") and variational dequantization
(Ho, Chen, Srinivas, Duan & Abbeel 2019, "Flow++: Improving Flow-Based Generative Models with
Variational Dequantization and Architecture Design", sec. 3.1).

Pixels x in {0, ..., K-1}^D become u = (x + v) / K in [0, 1)^D with noise v ~ q(v | x) on
[0, 1)^D, so that for any density p on [0, 1)^D (Flow++ sec. 3.1, written for u)

    log P(x) >= E_q[log p(u) - D log K - log q(v | x)],

uniform noise being q = 1 (log q = 0). Variational dequantization learns q(v | x), as a flow
conditioned on x, jointly with p by maximising the bound; its gap is KL(q(v | x) || p(v | x)) to
the model's posterior over the noise, which uniform noise closes only where p is flat in each bin.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.data.images import dequantize
from gen_runner.flows.distributions import StandardNormal
from gen_runner.flows.transforms.base import Compose, sum_except_batch
from gen_runner.flows.transforms.coupling import Coupling, TanhLogScale, checkerboard_mask
from gen_runner.flows.transforms.univariate import Affine
from gen_runner.nets.resnet import ResNet

__all__ = ["Dequantization", "UniformDequantization", "VariationalDequantization"]


class Dequantization(nn.Module):
    """Noise for discrete pixels: `sample(x, generator) -> (u, log_q)`.

    x: [B, C, H, W] integer pixel values in {0, ..., num_levels - 1} (any dtype); u = (x + v) / K in
    [0, 1)^D, the continuous input of the flow; log_q: [B], log q(v | x) of the noise v = u K - x.
    """

    def __init__(self, num_levels: int):
        super().__init__()
        self.num_levels = num_levels

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"num_levels={self.num_levels}"


class UniformDequantization(Dequantization):
    """v ~ U[0, 1)^D, one draw per pixel (Theis et al. 2016); log q = 0."""

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        u = dequantize(x, self.num_levels, generator=generator)
        return u, u.new_zeros(x.shape[0])


class _ContextConditioner(nn.Module):
    """A coupling conditioner that also sees the context: ResNet(concat(masked input, context))."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([inputs, context], 1))


class VariationalDequantization(Dequantization):
    """q(v | x) a conditional flow (Flow++ sec. 3.1): eps ~ N(0, I), y = g(eps; x), v = sigmoid(y), and

        log q(v | x) = log N(eps; 0, I) - log|det dy/deps| - sum log sigmoid'(y).

    g is `num_couplings` affine couplings (RealNVP's tanh-bounded scale) with alternating checkerboard
    masks, each conditioner a `ResNet` of `num_blocks` blocks and `hidden_channels` maps that sees the
    masked input and features of x: a `ResNet` of the same size on x / K - 0.5 (Flow++'s scaling).
    The conditioners' outputs start at zero, so q starts as a logit-normal, sigmoid(N(0, I)).
    No batch normalization: q(v | x) of one image does not depend on the rest of the batch.

    Deviations: Flow++ used 4 couplings of its logistic-mixture CDF type with self-attention
    conditioners (2 blocks, 96 filters on CIFAR-10, with actnorm and 1x1 convolutions in between)
    and a 3-layer gated-conv context network; the defaults here (2 affine couplings, 2 blocks of
    32 maps) are sized for small images on a CPU.
    """

    def __init__(self, shape: Sequence[int], num_levels: int, num_couplings: int = 2, hidden_channels: int = 32,
                 num_blocks: int = 2):
        super().__init__(num_levels)
        if num_couplings < 1:
            raise ValueError(f"variational dequantization needs a coupling, got num_couplings={num_couplings}")
        c, h, w = shape
        self.context = ResNet(c, hidden_channels, hidden_channels, num_blocks, batch_norm=False, zero_last=False)
        couplings = []
        for i in range(num_couplings):
            mask = checkerboard_mask(c, h, w, i)
            net = nn.Sequential(ResNet(c + hidden_channels, 2 * c, hidden_channels, num_blocks, batch_norm=False),
                                TanhLogScale(c))
            couplings.append(Coupling(mask, _ContextConditioner(net), Affine()))
        self.couplings = Compose(*couplings)
        self.base = StandardNormal(tuple(shape))

    def forward(self, eps: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise v in (0, 1)^D of base draws eps given pixels x, and log|det dv/deps|: [B]."""
        context = self.context(x.to(eps.dtype) / self.num_levels - 0.5)
        y, logabsdet = self.couplings(eps, context)
        return torch.sigmoid(y), logabsdet + sum_except_batch(F.logsigmoid(y) + F.logsigmoid(-y))

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        eps = self.base.sample(x.shape[0], generator=generator, device=x.device)
        v, logabsdet = self(eps, x)
        return (x.to(v.dtype) + v) / self.num_levels, self.base.log_prob(eps) - logabsdet
