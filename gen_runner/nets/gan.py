"""GAN nets chosen by the data: MLPs for points, DCGAN convolutions for images (`kind="auto"`), or
one family forced (`kind="mlp"`: the original GAN's MLPs on flattened images; `kind="conv"`).
Every GAN model option builds its nets through these functions, so presets (e.g. PacGAN's 2-D
benchmark nets) can set `model.generator.mlp` / `model.discriminator.mlp` for any variant.

Models that also infer latents (BiGAN/ALI, VEEGAN) add an `encoder` x -> z and judge (x, z) pairs
with a `joint_discriminator`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gen_runner.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gen_runner.nets.mlp import MLP, MLPDiscriminator, MLPGenerator, hidden_layers

__all__ = ["generator", "discriminator", "encoder", "joint_discriminator", "JointDiscriminator", "net_kind"]


def net_kind(kind: str, data_shape: Sequence[int]) -> str:
    """The net family `kind` (auto, mlp or conv) builds for data of `data_shape`: mlp or conv."""
    if kind not in ("auto", "mlp", "conv"):
        raise ValueError(f"kind={kind!r}: choose auto, mlp or conv")
    return ("conv" if len(data_shape) == 3 else "mlp") if kind == "auto" else kind


def generator(latent_dim: int, data_shape: Sequence[int], kind: str = "auto", mlp: dict | None = None,
              conv: dict | None = None) -> nn.Module:
    if net_kind(kind, data_shape) == "mlp":
        return MLPGenerator(latent_dim, data_shape, **(mlp or {}))
    return DCGANGenerator(latent_dim, data_shape, **(conv or {}))


def discriminator(data_shape: Sequence[int], kind: str = "auto", mlp: dict | None = None,
                  conv: dict | None = None) -> nn.Module:
    if net_kind(kind, data_shape) == "mlp":
        return MLPDiscriminator(data_shape, **(mlp or {}))
    return DCGANDiscriminator(data_shape, **(conv or {}))


def encoder(data_shape: Sequence[int], latent_dim: int, kind: str = "auto", mlp: dict | None = None,
            conv: dict | None = None) -> nn.Module:
    """x -> z [B, latent_dim], linear output: an MLP on the flattened example, or DCGAN's
    discriminator with `latent_dim` outputs."""
    if net_kind(kind, data_shape) == "mlp":
        return nn.Sequential(nn.Flatten(), MLP(math.prod(data_shape), latent_dim, **(mlp or {})))
    return DCGANDiscriminator(data_shape, out_features=latent_dim, **(conv or {}))


class JointDiscriminator(nn.Module):
    """D(x, z): one logit per (example, latent) pair, `joint([z_net(z), x_net(x)])` (ALI's D_z,
    D_x and D_xz)."""

    def __init__(self, x_net: nn.Module, z_net: nn.Module, joint: nn.Module):
        super().__init__()
        self.x_net, self.z_net, self.joint = x_net, z_net, joint

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.z_net(z), self.x_net(x).flatten(1)], dim=1))


def joint_discriminator(data_shape: Sequence[int], latent_dim: int, kind: str = "auto", mlp: dict | None = None,
                        conv: dict | None = None, z_hidden: Sequence[int] = (), joint: dict | None = None
                        ) -> JointDiscriminator:
    """A discriminator of (x, z) pairs. `mlp`: an MLPDiscriminator(**mlp) on [z, flattened x]
    (BiGAN's permutation-invariant MNIST D, VEEGAN's D). `conv`: DCGAN's discriminator body on x
    (up to its s0 x s0 feature map), then an MLPDiscriminator(**joint) on both (ALI's layout).
    Either way z may first pass `z_hidden` LeakyReLU layers (ALI's D_z)."""
    z_net = nn.Sequential(*hidden_layers(latent_dim, z_hidden, "leaky_relu"))
    z_width = z_hidden[-1] if z_hidden else latent_dim
    if net_kind(kind, data_shape) == "mlp":
        joint_net = MLPDiscriminator((z_width + math.prod(data_shape),), **(mlp or {}))
        return JointDiscriminator(nn.Flatten(), z_net, joint_net)
    x_net = DCGANDiscriminator(data_shape, **(conv or {})).net[:-1]
    with torch.no_grad():
        x_width = x_net.eval()(torch.zeros(1, *data_shape)).numel()
    x_net.train()
    return JointDiscriminator(x_net, z_net, MLPDiscriminator((z_width + x_width,), **(joint or {})))
