"""Class-conditional GAN nets: the nets of gen_runner/nets/gan.py (MLP or DCGAN, by `kind`) with
the label y fed in.

- Concatenation (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets"): y, one-hot or a
  learned embedding e(y), joins the input. G([z, e(y)]); D([x, e(y)]), e(y) appended to the
  flattened example (MLP) or as constant feature maps, one per dimension (conv).
- Projection (Miyato & Koyama 2018, "cGANs with Projection Discriminator"):
  D(x, y) = psi(phi(x)) + <V_y, phi(x)>, phi D's body up to its output layer, psi that layer,
  V a learned class embedding of phi's size (Glorot-uniform, as in the authors' code;
  `model.spectral_norm` normalizes phi's and psi's layers but not V, which that code also does).
- Auxiliary classifier (Odena, Olah & Shlens 2017, AC-GAN): D sees x alone; its body phi feeds
  the source head psi and a class head shaped like psi with K outputs.

phi(x) is taken flattened: the last hidden layer of an MLP (after its minibatch layer, if any),
the whole s0 x s0 feature map of DCGAN's D, which its full-size output convolution psi reads
(the authors' ResNet sums phi over space instead).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.nets.dcgan import dcgan_init
from gen_runner.nets.gan import discriminator, generator, net_kind
from gen_runner.nets.mlp import MLPDiscriminator

__all__ = ["LabelEmbedding", "ConditionalGenerator", "ConcatDiscriminator", "ProjectionDiscriminator",
           "AuxiliaryClassifierDiscriminator", "conditional_generator", "conditional_discriminator",
           "auxiliary_discriminator"]


class LabelEmbedding(nn.Module):
    """Class indices [B] -> [B, dim]: one-hot (dim = num_classes) when `dim` is None, else learned."""

    def __init__(self, num_classes: int, dim: int | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.dim = num_classes if dim is None else dim
        self.table = None if dim is None else nn.Embedding(num_classes, dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.num_classes).float() if self.table is None else self.table(y)


def _split(net: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(phi, psi): an unconditional discriminator up to its output layer, and that layer."""
    if isinstance(net, MLPDiscriminator):
        return nn.Sequential(nn.Flatten(), net.body, net.minibatch), net.head
    return net.net[:-1], net.net[-1]  # DCGANDiscriminator: the s0 x s0 map and its full-size convolution


def _phi_size(head: nn.Module) -> int:
    """Entries of the flattened phi(x) that the output layer `head` (one output) reads."""
    return head.weight[0].numel()


class ConditionalGenerator(nn.Module):
    """G(z, y) = G_0([z, e(y)])."""

    def __init__(self, net: nn.Module, embed: LabelEmbedding):
        super().__init__()
        self.net, self.embed = net, embed

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))


class ConcatDiscriminator(nn.Module):
    """D(x, y) = D_0([x, e(y)]): e(y) after the flattened x (`maps=False`) or as channels."""

    def __init__(self, net: nn.Module, embed: LabelEmbedding, maps: bool):
        super().__init__()
        self.net, self.embed, self.maps = net, embed, maps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.embed(y).to(x.dtype)
        if self.maps:
            return self.net(torch.cat([x, e[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1))
        return self.net(torch.cat([x.flatten(1), e], dim=1))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + <V_y, phi(x)>, one logit per example."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.body, self.head = _split(net)
        self.embed = nn.Embedding(num_classes, _phi_size(self.head))
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(h).flatten() + (self.embed(y) * h.flatten(1)).sum(dim=1)


class AuxiliaryClassifierDiscriminator(nn.Module):
    """x -> (source logit [B], class logits [B, K]) from one body."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.body, self.head = _split(net)
        if isinstance(self.head, nn.Conv2d):
            self.classes = nn.Conv2d(self.head.in_channels, num_classes, self.head.kernel_size)
            dcgan_init(self.classes)
        else:
            self.classes = nn.Linear(self.head.in_features, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.head(h).flatten(), self.classes(h).flatten(1)


def conditional_generator(latent_dim: int, data_shape: Sequence[int], num_classes: int, embed_dim: int | None = None,
                          **net) -> ConditionalGenerator:
    """`nets.gan.generator(**net)` (kind, mlp, conv) on [z, e(y)]; e one-hot unless `embed_dim`."""
    embed = LabelEmbedding(num_classes, embed_dim)
    return ConditionalGenerator(generator(latent_dim + embed.dim, data_shape, **net), embed)


def conditional_discriminator(data_shape: Sequence[int], num_classes: int, conditioning: str = "auto",
                              embed_dim: int | None = None, kind: str = "auto", **net) -> nn.Module:
    """`nets.gan.discriminator(kind, **net)` conditioned by `projection` or `concat` (e one-hot
    unless `embed_dim`); `auto`: projection for conv nets, concat for MLPs."""
    kind = net_kind(kind, data_shape)
    if conditioning == "auto":
        conditioning = "projection" if kind == "conv" else "concat"
    if conditioning == "projection":
        if embed_dim is not None:
            raise ValueError(f"model.discriminator.embed_dim={embed_dim}: the projection's embedding has phi's size; "
                             "set it with conditioning=concat only")
        return ProjectionDiscriminator(discriminator(data_shape, kind, **net), num_classes)
    if conditioning == "concat":
        embed = LabelEmbedding(num_classes, embed_dim)
        maps = kind == "conv"
        shape = (data_shape[0] + embed.dim, *data_shape[1:]) if maps else (math.prod(data_shape) + embed.dim,)
        return ConcatDiscriminator(discriminator(shape, kind, **net), embed, maps)
    raise ValueError(f"model.discriminator.conditioning={conditioning!r}: choose auto, projection or concat")


def auxiliary_discriminator(data_shape: Sequence[int], num_classes: int, **net) -> AuxiliaryClassifierDiscriminator:
    """`nets.gan.discriminator(**net)` (kind, mlp, conv) with AC-GAN's class head beside its output."""
    return AuxiliaryClassifierDiscriminator(discriminator(data_shape, **net), num_classes)
