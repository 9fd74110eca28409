"""The nets of the semi-supervised GAN (model=ssgan), after Salimans et al. 2016's permutation-invariant
MNIST model: MLPs on flattened examples.

- `NoisyMLPClassifier`: Gaussian noise on the input (std 0.3), hidden ReLU layers each followed by
  Gaussian noise (std 0.5), weight normalization (Salimans & Kingma 2016) of every linear layer,
  K class logits. `features(x)` returns (the last hidden layer's activations before its noise,
  logits): what feature matching compares. The noise is on in training mode only.
- `ssgan_generator`: the project's `MLPGenerator` with softplus hidden layers after BatchNorm
  (linear -> BatchNorm -> softplus, as the authors' code) and a weight-normalised output layer,
  tanh on images (the authors' sigmoid on [0, 1], rescaled to the GAN range [-1, 1]).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from gen_runner.nets.mlp import MLPGenerator, hidden_layers

__all__ = ["GaussianNoise", "NoisyMLPClassifier", "ssgan_generator", "weight_normalized"]


class GaussianNoise(nn.Module):
    """x + std * N(0, 1) in training mode; the identity in eval mode."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std > 0 else x

    def extra_repr(self) -> str:
        return f"std={self.std}"


def weight_normalized(module: nn.Module) -> nn.Module:
    """Weight normalization w = g v / ||v|| (one g per output unit) of every linear layer in `module`."""
    for m in list(module.modules()):
        if isinstance(m, nn.Linear):
            _weight_norm(m)
    return module


class NoisyMLPClassifier(nn.Module):
    """Flattened example -> K logits through noisy, weight-normalised ReLU layers (see the module docstring)."""

    def __init__(self, data_shape: Sequence[int], num_classes: int,
                 hidden: Sequence[int] = (1000, 500, 250, 250, 250), activation: str = "relu",
                 input_noise: float = 0.3, hidden_noise: float = 0.5, weight_norm: bool = True):
        super().__init__()
        if not hidden:
            raise ValueError("hidden: give at least one hidden layer (its activations are the features)")
        self.input_noise = GaussianNoise(input_noise)
        widths = [math.prod(data_shape), *hidden]
        self.layers = nn.ModuleList(nn.Sequential(*hidden_layers(w_in, [w_out], activation))
                                    for w_in, w_out in zip(widths, widths[1:]))
        self.noise = GaussianNoise(hidden_noise)
        self.head = nn.Linear(hidden[-1], num_classes)
        self.num_features = hidden[-1]
        if weight_norm:
            weight_normalized(self)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(last hidden activations, before their noise; class logits)."""
        h = self.input_noise(x.flatten(1))
        for i, layer in enumerate(self.layers):
            h = layer(h if i == 0 else self.noise(h))
        return h, self.head(self.noise(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def ssgan_generator(latent_dim: int, data_shape: Sequence[int], hidden: Sequence[int] = (500, 500),
                    activation: str = "softplus", batch_norm: bool = True, weight_norm: bool = True) -> nn.Module:
    """An `MLPGenerator` whose output layer is weight-normalised (the authors' MNIST generator)."""
    generator = MLPGenerator(latent_dim, data_shape, hidden, activation, batch_norm)
    if weight_norm:
        weight_normalized(generator.net[-1])
    return generator
