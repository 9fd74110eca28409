"""Self-attention over feature-map positions (Zhang, Goodfellow, Metaxas & Odena 2019,
"Self-Attention Generative Adversarial Networks", sec. 3), in the form BigGAN uses (Brock, Donahue
& Simonyan 2019; the authors' BigGAN-PyTorch `layers.Attention`).

For a map x [B, C, H, W], 1x1 convolutions (no bias) give theta(x) [C/8] at every position and
phi(x) [C/8], g(x) [C/2] max-pooled 2x2 (a quarter of the positions as keys and values);
beta = softmax over keys of theta^T phi; o = conv_o(g beta^T) [C]; the output is gamma * o + x
with gamma a learned scalar initialised at 0, so a new block starts as the identity and the net
learns how much non-local evidence to mix in. SAGAN's f/g/h are theta/phi/g here; it does not
pool phi and g (BigGAN does, as its code).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.errors import UserError

__all__ = ["SelfAttention"]


class SelfAttention(nn.Module):
    """gamma * conv_o(attention(theta(x), phi(x), g(x))) + x on maps of `channels` (a multiple of 8,
    even height and width); `wrap` is applied to each 1x1 convolution (e.g. spectral norm)."""

    def __init__(self, channels: int, wrap: Callable[[nn.Module], nn.Module] = lambda m: m):
        super().__init__()
        if channels % 8:
            raise UserError(f"self-attention on {channels} channels: it needs a multiple of 8 (C/8 query channels); "
                            "raise the net's ch or move or drop its attention")

        def conv(c_in: int, c_out: int) -> nn.Module:
            return wrap(nn.Conv2d(c_in, c_out, 1, bias=False))

        self.theta, self.phi = conv(channels, channels // 8), conv(channels, channels // 8)
        self.g, self.o = conv(channels, channels // 2), conv(channels // 2, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [B, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [B, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [B, C/2, HW/4]
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [B, HW, HW/4]: each position's keys
        o = self.o((g @ beta.transpose(1, 2)).view(b, c // 2, h, w))
        return self.gamma * o + x
