"""GAN nets chosen by the data: MLPs for points, DCGAN convolutions for images (`kind="auto"`), or
one family forced (`kind="mlp"`: the original GAN's MLPs on flattened images; `kind="conv"`).
Every GAN model option builds its nets through these two functions, so presets (e.g. PacGAN's
2-D benchmark nets) can set `model.generator.mlp` / `model.discriminator.mlp` for any variant."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from gen_runner.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gen_runner.nets.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["generator", "discriminator", "net_kind"]


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
