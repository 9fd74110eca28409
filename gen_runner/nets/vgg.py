"""VGG19's convolutional layers (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", configuration E), up to phi_5,4: the activation of the 4th conv
before the 5th max-pooling, the feature map of SRGAN's VGG54 loss (Ledig et al. 2017, sec. 2.2.2).

The layer indices are torchvision's `vgg19().features`, so its ImageNet weights file
(vgg19-dcbb9e9d.pth, keys `features.<i>.weight|bias`) loads as is, read with
`torch.load(weights_only=True)`; gen-runner never downloads it.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from gen_runner.errors import UserError

__all__ = ["VGG19Features", "VGG19_BLOCKS"]

# Channels of each conv, blocks separated by max-pooling; phi_5,4 is the last conv's ReLU.
VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """Images in [0, 1] (grey ones repeated to RGB) -> phi_5,4 [B, 512, H/16, W/16], normalised
    with ImageNet's mean and std as the weights expect."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, block in enumerate(VGG19_BLOCKS):
            if i:
                layers.append(nn.MaxPool2d(2, 2))
            for c_out in block:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "VGG19Features":
        """The layers with the weights of a torchvision VGG19 state dict file (the classifier's
        weights in it are ignored)."""
        net = cls()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UserError(f"VGG19 weights not found: {path}; pass the torchvision file vgg19-dcbb9e9d.pth "
                            "(https://download.pytorch.org/models/vgg19-dcbb9e9d.pth) downloaded beforehand") from None
        except Exception as e:
            raise UserError(f"cannot read VGG19 weights {path} ({type(e).__name__}): pass torchvision's "
                            "vgg19-dcbb9e9d.pth state dict") from e
        wanted = net.state_dict()
        found = {k: v for k, v in state.items() if k in wanted} if isinstance(state, dict) else {}
        if found.keys() != wanted.keys() or any(found[k].shape != wanted[k].shape for k in wanted):
            raise UserError(f"{path} is not a VGG19 state dict (keys features.<i>.weight|bias of torchvision's "
                            "vgg19); pass vgg19-dcbb9e9d.pth")
        net.load_state_dict(found)
        return net.eval().requires_grad_(False)
