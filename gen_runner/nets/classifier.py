"""Small classifiers whose penultimate features serve as an offline feature space for FID, KID,
precision/recall, ... on a domain (the way the Inception network serves natural images).

Images: two VGG-style blocks (two 3x3 conv + BatchNorm + ReLU, then 2x2 max-pooling), global
average pooling and a 128-unit hidden layer, the features; vectors: an MLP whose last hidden layer
is the features. Both take data in [0, 1] (images) or as given (points).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.mlp import MLP

__all__ = ["ConvClassifier", "MLPClassifier", "classifier_net"]


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.MaxPool2d(2)]


class ConvClassifier(nn.Module):
    def __init__(self, data_shape: Sequence[int], num_classes: int, channels: int = 32,
                 num_features: int = 128, dropout: float = 0.3):
        super().__init__()
        c = data_shape[0]
        self.body = nn.Sequential(*_block(c, channels), *_block(channels, 2 * channels),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(2 * channels, num_features), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, num_classes))
        self.num_features = num_features

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features, logits) of images in [0, 1]."""
        h = self.body(x * 2 - 1)
        return h, self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


class MLPClassifier(nn.Module):
    def __init__(self, data_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.body = MLP(math.prod(data_shape), hidden[-1], hidden[:-1])
        self.head = nn.Linear(hidden[-1], num_classes)
        self.num_features = hidden[-1]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.body(x.flatten(1)))
        return h, self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def classifier_net(data_shape: Sequence[int], num_classes: int, conv: dict | None = None,
                   mlp: dict | None = None) -> nn.Module:
    """A ConvClassifier for images (C, H, W), an MLPClassifier for vectors (D,)."""
    if len(data_shape) == 3:
        return ConvClassifier(data_shape, num_classes, **(conv or {}))
    return MLPClassifier(data_shape, num_classes, **(mlp or {}))
