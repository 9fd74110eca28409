"""BigGAN's generator and discriminator (Brock, Donahue & Simonyan 2019, "Large Scale GAN Training
for High Fidelity Natural Image Synthesis", appendix B; layer for layer as the authors'
BigGAN-PyTorch `BigGAN.py` / `layers.py`).

G(z, y): a shared class embedding e(y) (`shared_dim`, not spectral-normed) and a hierarchical z:
z splits into one chunk for the first linear layer (-> bottom x bottom x C0) and one chunk per
up-block. Each block is a ResNet up-block, BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 plus a 1x1-conv
shortcut of the upsampled input (nearest upsampling), whose BatchNorms are conditional: no
affine of their own, gain 1 + W_g c and bias W_b c with c = [e(y), z chunk] (linear, no bias).
Then BN-ReLU-conv3x3-tanh. D: ResNet down-blocks (the first without pre-activation; average
pooling after the convolutions, the shortcut's 1x1 conv before it except in the first block),
ReLU, global sum pooling to h, and the projection (Miyato & Koyama 2018, "cGANs with Projection
Discriminator"): D(x, y) = w.h + b + <V_y, h>. Self-attention (gen_runner/nets/attention.py)
follows the first block whose output has side `attention` (in either net; null: none).
Spectral norm (torch's parametrization, one power iteration per training forward) on every
convolution and linear layer of both nets and on D's class embedding V; not on G's embeddings
(the authors' code leaves them plain: spectral-normed, they "seem to randomly cripple G").

Widths (`ch` times a multiplier per block) are the paper's: images of side <= 32 (the paper's
CIFAR-10 architecture: G 4ch in every block from 4x4; D two down-blocks then two plain ones, all
4ch), sides of 64, 128 (the paper's 128x128: G 16, 8, 4, 2, 1 ch; D 1, 2, 4, 8, 16, 16 ch),
256 and 512 as BigGAN-PyTorch's tables. A side is bottom * 2^k, bottom in [4, 8) (8, 16 and 32
as the paper; 28 from 7x7); G has k up-blocks.

`shared_dim=null` with `hierarchical=false` is BigGAN-PyTorch without `--G_shared`/`--hier`
(its CIFAR-10 script): z enters the first layer whole and each conditional BN has class
embeddings of its own for gain and bias. Weights are initialised `ortho` (the paper's), `N02`
(N(0, 0.02), that CIFAR script's) or `xavier`, biases as torch's default.

Deviation: BigGAN-PyTorch's BatchNorm eps is 1e-5 with running statistics at momentum 0.1, as
here; the paper's "standing statistics" (re-estimating them over many forward passes before
sampling) are not done: eval-mode sampling uses the running statistics.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_sn

from gen_runner.errors import UserError
from gen_runner.nets.attention import SelfAttention

__all__ = ["BigGANGenerator", "BigGANDiscriminator", "ConditionalBatchNorm", "layout"]

INITS = {"ortho": nn.init.orthogonal_, "N02": lambda w: nn.init.normal_(w, 0.0, 0.02),
         "xavier": nn.init.xavier_uniform_}
# Multipliers of `ch` per block for k up-blocks (BigGAN-PyTorch's G_arch / D_arch for 64 ... 512);
# k <= 3 uses the CIFAR-10 architecture.
G_WIDTHS = {4: [16, 8, 4, 2], 5: [16, 8, 4, 2, 1], 6: [16, 8, 8, 4, 2, 1], 7: [16, 8, 8, 4, 2, 1, 1]}
D_WIDTHS = {4: [1, 2, 4, 8, 16], 5: [1, 2, 4, 8, 16, 16], 6: [1, 2, 4, 8, 8, 16, 16], 7: [1, 1, 2, 4, 8, 8, 16, 16]}


def layout(data_shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, bottom, k): a square image of side bottom * 2^k, bottom in [4, 8), 1 <= k <= 7."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise UserError(f"model=biggan needs square images (C, H, H), got data of shape {tuple(data_shape)}")
    side, k = data_shape[1], 0
    while side % 2 == 0 and side // 2 >= 4:
        side, k = side // 2, k + 1
    if not 1 <= k <= 7:
        raise UserError(f"model=biggan needs images of side 4..7 * 2^k, 8 to 512 pixels (8, 16, 28, 32, 64, 128, "
                        f"256), got {data_shape[1]}; pad or resize the data (data.size where the data has it)")
    return data_shape[0], side, k


class _Layers:
    """Makes the nets' layers: weights initialised by `init`, spectral norm if asked."""

    def __init__(self, init: str, spectral_norm: bool):
        if init not in INITS:
            raise UserError(f"model.generator/discriminator.init={init!r}: choose {', '.join(INITS)}")
        self.init, self.spectral_norm = INITS[init], spectral_norm

    def __call__(self, layer: nn.Module, normalize: bool = True) -> nn.Module:
        self.init(layer.weight)
        return apply_sn(layer) if normalize and self.spectral_norm else layer

    def conv(self, c_in: int, c_out: int, kernel: int = 3) -> nn.Module:
        return self(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2))


def _attention(sides: list[int], attention: int | None, net: str) -> int | None:
    """The index of the first block whose output has side `attention` (None: no attention)."""
    if not attention:
        return None
    if attention not in sides:
        raise UserError(f"model.{net}.attention={attention}: its blocks output sides {sorted(set(sides))}; "
                        "pick one of them, or null for no self-attention")
    return sides.index(attention)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine, then gain 1 + W_g c and bias W_b c per example: `gain`/`bias` are
    linear layers of the condition vector c, or embeddings of the labels (c = y)."""

    def __init__(self, channels: int, gain: nn.Module, bias: nn.Module):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain, self.bias = gain, bias

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class GBlock(nn.Module):
    """CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3, plus conv1x1(up(x))."""

    def __init__(self, c_in: int, c_out: int, norm, make: _Layers):
        super().__init__()
        self.bn1, self.conv1 = norm(c_in), make.conv(c_in, c_out)
        self.bn2, self.conv2 = norm(c_out), make.conv(c_out, c_out)
        self.shortcut = make.conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class BigGANGenerator(nn.Module):
    """(z [B, latent_dim], y [B]) -> images [B, C, H, W] in [-1, 1]."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], num_classes: int, ch: int = 64,
                 attention: int | None = 64, shared_dim: int | None = 128, hierarchical: bool = True,
                 init: str = "ortho", spectral_norm: bool = True):
        super().__init__()
        channels, self.bottom, k = layout(data_shape)
        widths = [4] * k if k <= 3 else G_WIDTHS[k]
        c_in = [ch * w for w in [widths[0], *widths[:-1]]]
        c_out = [ch * w for w in widths]
        self.hierarchical = hierarchical
        if shared_dim is None and hierarchical:
            raise UserError("model.generator.shared_dim=null (per-layer class embeddings) needs "
                            "model.generator.hierarchical=false; or give the shared embedding a size")
        slots = k + 1 if hierarchical else 1
        if latent_dim % slots:
            raise UserError(f"model.latent_dim={latent_dim}: the hierarchical z splits into {slots} equal chunks "
                            f"(one for the first layer, one per block): use a multiple of {slots}, e.g. "
                            f"{slots * max(1, round(latent_dim / slots))}")
        self.chunk = latent_dim // slots
        make = _Layers(init, spectral_norm)
        self.shared = None if shared_dim is None else make(nn.Embedding(num_classes, shared_dim), normalize=False)
        cond = None if shared_dim is None else shared_dim + (self.chunk if hierarchical else 0)

        def norm(c: int) -> ConditionalBatchNorm:
            if cond is None:
                return ConditionalBatchNorm(c, make(nn.Embedding(num_classes, c), normalize=False),
                                            make(nn.Embedding(num_classes, c), normalize=False))
            return ConditionalBatchNorm(c, make(nn.Linear(cond, c, bias=False)), make(nn.Linear(cond, c, bias=False)))

        self.linear = make(nn.Linear(self.chunk, c_in[0] * self.bottom**2))
        self.blocks = nn.ModuleList(GBlock(i, o, norm, make) for i, o in zip(c_in, c_out))
        sides = [self.bottom * 2 ** (i + 1) for i in range(k)]
        self.attention_at = _attention(sides, attention, "generator")
        self.attention = None if self.attention_at is None else SelfAttention(c_out[self.attention_at], make)
        self.out = nn.Sequential(nn.BatchNorm2d(c_out[-1]), nn.ReLU(), make.conv(c_out[-1], channels))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.hierarchical:
            first, *chunks = z.split(self.chunk, dim=1)
            e = self.shared(y)
            conds = [torch.cat([e, chunk], dim=1) for chunk in chunks]
        else:
            first, conds = z, [y if self.shared is None else self.shared(y)] * len(self.blocks)
        h = self.linear(first).view(len(z), -1, self.bottom, self.bottom)
        for i, (block, c) in enumerate(zip(self.blocks, conds)):
            h = block(h, c)
            if i == self.attention_at:
                h = self.attention(h)
        return torch.tanh(self.out(h))


class DBlock(nn.Module):
    """[ReLU]-conv3x3-ReLU-conv3x3-[avgpool], plus a 1x1-conv shortcut (pooled after it, or before
    it without pre-activation) where the width or the side changes."""

    def __init__(self, c_in: int, c_out: int, preactivation: bool, downsample: bool, make: _Layers):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1, self.conv2 = make.conv(c_in, c_out), make.conv(c_out, c_out)
        self.shortcut = make.conv(c_in, c_out, 1) if c_in != c_out or downsample else None

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x))))
        if self.shortcut is None:
            return h + x
        return h + (self.pool(self.shortcut(x)) if self.preactivation else self.shortcut(self.pool(x)))


class BigGANDiscriminator(nn.Module):
    """(x [B, C, H, W], y [B]) -> one logit per example."""

    def __init__(self, data_shape: Sequence[int], num_classes: int, ch: int = 64, attention: int | None = 64,
                 init: str = "ortho", spectral_norm: bool = True):
        super().__init__()
        channels, _, k = layout(data_shape)
        widths, down = ([4] * 4, [True, True, False, False]) if k <= 3 else (D_WIDTHS[k], [True] * k + [False])
        c_out = [ch * w for w in widths]
        make = _Layers(init, spectral_norm)
        self.blocks = nn.ModuleList(DBlock(i, o, n > 0, d, make)
                                    for n, (i, o, d) in enumerate(zip([channels, *c_out[:-1]], c_out, down)))
        sides = [data_shape[1] // 2 ** sum(down[: n + 1]) for n in range(len(down))]
        self.attention_at = _attention(sides, attention, "discriminator")
        self.attention = None if self.attention_at is None else SelfAttention(c_out[self.attention_at], make)
        self.linear = make(nn.Linear(c_out[-1], 1))
        self.embed = make(nn.Embedding(num_classes, c_out[-1]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """h: ReLU and global sum pooling of the last block's map [B, C_last]."""
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.attention_at:
                x = self.attention(x)
        return F.relu(x).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.linear(h).flatten() + (self.embed(y) * h).sum(dim=1)
