"""Layers that let a discriminator look across the minibatch, against mode collapse.

- Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs",
  sec. 3.2): features f(x_i) [N, A] times a tensor T [A, B, C] give M_i [B, C]; for each of the B
  kernels, o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1) over the batch (j = i included, as in the
  paper); the B outputs are appended to the features. T is drawn from N(0, init_std^2): 0.1 on an
  MLP's hidden layer; a conv net's flattened feature map is wide, so nets/dcgan.py scales it by
  1/sqrt(A), which keeps M's entries at the features' scale (a larger T puts every other example
  at an L1 distance whose exp is 0, and the layer then sees only x_i itself).
- Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", sec. 3): the
  standard deviation of every feature over the batch, averaged into one number, appended as one
  more feature (or one more constant channel for feature maps).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev"]


class MinibatchDiscrimination(nn.Module):
    """[N, A] -> [N, A + B]."""

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5, init_std: float = 0.1):
        super().__init__()
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * init_std)
        self.out_features = in_features + num_kernels

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        m = (h @ self.T).view(len(h), self.num_kernels, self.kernel_dim).transpose(0, 1)  # [B, N, C]
        l1 = torch.cdist(m, m, p=1)  # [B, N, N]
        return torch.cat([h, torch.exp(-l1).sum(2).t()], dim=1)


class MinibatchStdDev(nn.Module):
    """[N, A] -> [N, A + 1], or [N, C, H, W] -> [N, C + 1, H, W]."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        std = (h.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        return torch.cat([h, std.expand(len(h), 1, *h.shape[2:])], dim=1)
