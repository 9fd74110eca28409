"""StyleGAN's generator and StyleGAN2's discriminator.

StyleGAN (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks"): a mapping network f: z -> w (z pixel-normalised, 8 fully connected layers
with leaky ReLU 0.2, sec. 2) and a synthesis network that starts from a learned constant 4x4x512
input. Every synthesis layer takes its own copy of w (`ws` [N, num_layers, w_dim], so styles can
be mixed and truncated per layer) and per-pixel noise scaled by learned per-channel factors
(initialised to 0). Version 1 (`version=1`): conv -> noise -> bias -> leaky ReLU -> instance norm
-> AdaIN, y_s * x + y_b with the style (y_s, y_b) an affine map of w (y_s's bias starting at 1);
a 1x1 ToRGB per resolution, blended in by alpha while a resolution fades in (progressive growing).

StyleGAN2 (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the
Image Quality of StyleGAN", `version=2`): AdaIN is replaced by modulated convolution with weight
demodulation (sec. 2.2, eq. 1-3: w'_ijk = s_i w_ijk, w''_ijk = w'_ijk / sqrt(sum_ik w'^2 + eps)),
the noise and bias moved outside the style block, the constant initialised N(0, 1); the "skip"
generator sums the upsampled ToRGB outputs of every resolution (sec. 4.1), and the "residual"
discriminator (`ResidualDiscriminator`) adds a 1x1-conv skip to each block, divided by sqrt(2).

Both versions have 2 log2(R) - 2 style layers at resolution R: two per resolution (version 1: the
constant's epilogue and a 3x3 conv at 4x4; an upsampling and a plain 3x3 conv above; version 2:
one conv at 4x4, two above, each ToRGB reading the next layer's w as the official code). Layer i
works at 4 * 2^(i // 2) pixels: the paper's coarse styles (4-8) are layers 0-3, middle (16-32)
4-7, fine (64 and up) 8 on (`style_groups`).

Channels per resolution r: min(channel_base / r, channel_max) (the code's fmap_base / fmap_max:
16384 and 512 for StyleGAN at 1024, 32768 for StyleGAN2); the configs cap channel_max for CPU runs.
Equalized learning rate everywhere (gen_runner/nets/equalized.py). Version 1's discriminator is
ProGAN's (gen_runner/nets/progan.py).

Deviations from the official code: up- and downsampling are nearest/average pooling with the
[1, 2, 1] binomial blur (StyleGAN's "bilinear" filtering) as separate ops, also in version 2
(whose code fuses a [1, 3, 3, 1] filter into strided convolutions); version 2's noise strength is
per channel like version 1's (the code: one scalar per layer); version 2's discriminator applies the
He gain to its weights before the leaky ReLU (version 1's form; the code: after it); its minibatch
standard deviation is taken over the whole batch (gen_runner/nets/minibatch.py; the code: groups of
4); version 1's discriminator is ProGAN's, without StyleGAN's blur before each downsampling.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.errors import UserError
from gen_runner.nets.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from gen_runner.nets.minibatch import MinibatchStdDev
from gen_runner.nets.progan import ProGANDiscriminator

__all__ = ["StyleGenerator", "discriminator", "MappingNetwork", "Synthesis", "ModulatedConv2d", "ResidualDiscriminator",
           "style_groups", "log2_side", "mix_styles", "truncate_styles", "num_style_layers", "upsample", "downsample"]

STYLE_GROUPS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, None)}  # the paper's fig. 3, in pixels


def log2_side(data_shape: Sequence[int]) -> int:
    """k with data of shape (C, 2^k, 2^k), k >= 2; one line otherwise."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2] or data_shape[1] < 4 \
            or data_shape[1] & (data_shape[1] - 1):
        raise UserError(f"model=stylegan needs square images of side 2^k >= 4 (the synthesis network doubles a "
                        f"4x4 input), got data of shape {tuple(data_shape)}: pass data.size=16 or 32")
    return int(math.log2(data_shape[1]))


def num_style_layers(resolution: int) -> int:
    """Style layers up to `resolution` pixels: two per resolution from 4x4."""
    return 2 * int(math.log2(resolution)) - 2


def style_groups(resolution: int) -> dict[str, range]:
    """The paper's coarse / middle / fine groups as ranges of style layers of a net of `resolution` pixels."""
    total = num_style_layers(resolution)
    return {name: range(min(num_style_layers(low) - 2, total), total if high is None else min(num_style_layers(high), total))
            for name, (low, high) in STYLE_GROUPS.items()}


def mix_styles(ws: torch.Tensor, other: torch.Tensor, layers: range | int) -> torch.Tensor:
    """Styles [N, L, w_dim] taken from `other` in `layers` (an int k: layers k and up) and from `ws` elsewhere."""
    layers = range(layers, ws.shape[1]) if isinstance(layers, int) else layers
    take = torch.zeros(ws.shape[1], dtype=torch.bool, device=ws.device)
    take[layers.start:layers.stop] = True
    return torch.where(take[None, :, None], other, ws)


def truncate_styles(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick in W (sec. 3.1 of StyleGAN's appendix B): w' = w_avg + psi (w - w_avg) in
    the layers below `cutoff` (all if None)."""
    truncated = w_avg.lerp(ws, psi)
    return truncated if cutoff is None else mix_styles(truncated, ws, cutoff)


_BLUR = torch.tensor([1.0, 2.0, 1.0])


def _blur(x: torch.Tensor) -> torch.Tensor:
    """The [1, 2, 1] x [1, 2, 1] / 16 binomial filter per channel (zero padding)."""
    k = (_BLUR[:, None] * _BLUR[None, :] / 16).to(x)
    return F.conv2d(x, k.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


def upsample(x: torch.Tensor) -> torch.Tensor:
    """2x nearest-neighbour upsampling, then the blur ("bilinear" upsampling, StyleGAN sec. 2)."""
    return _blur(F.interpolate(x, scale_factor=2, mode="nearest"))


def downsample(x: torch.Tensor) -> torch.Tensor:
    """The blur, then 2x2 average pooling."""
    return F.avg_pool2d(_blur(x), 2)


class MappingNetwork(nn.Module):
    """z [N, latent_dim] -> w [N, w_dim]: pixel norm of z, then `layers` equalized linear layers with
    leaky ReLU 0.2. The 100x lower learning rate is the optimizer's (a parameter group of its own,
    gen_runner/gans/stylegan.py), equivalent under Adam to the code's lr multiplier of 0.01."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = 8):
        super().__init__()
        if layers < 1:
            raise UserError(f"model.generator.mapping_layers={layers}: pass at least 1")
        dims = [latent_dim] + [w_dim] * layers
        self.net = nn.Sequential(PixelNorm(), *[m for i in range(layers) for m in
                                                (EqualizedLinear(dims[i], dims[i + 1]), nn.LeakyReLU(0.2))])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class NoiseInput(nn.Module):
    """x + scale * noise: single-channel per-pixel noise [N, 1, r, r], scaled per channel (scale starts
    at 0). "random": fresh noise; "fixed": the noise drawn at construction (a buffer, saved with the
    weights), for repeatable samples; or a given tensor."""

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise: str | torch.Tensor) -> torch.Tensor:
        if isinstance(noise, str):
            if noise not in ("random", "fixed"):
                raise ValueError(f"noise={noise!r}: pass random, fixed or a tensor")
            noise = torch.randn(len(x), 1, *x.shape[2:], device=x.device, dtype=x.dtype) if noise == "random" \
                else self.fixed
        return x + self.scale[None, :, None, None] * noise


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (sec. 2.2, eq. 1 and 3): the weight scaled per sample by the
    style s = affine(w) on its input channels, then, with `demodulate`, each output channel's weight
    divided by its L2 norm, so that unit-variance inputs give unit-variance outputs. One grouped
    convolution over the batch, as the paper's implementation. No bias (added after the noise)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1 / math.sqrt(in_channels * kernel_size**2)  # equalized learning rate
        self.demodulate, self.padding = demodulate, kernel_size // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, width = x.shape
        weight = self.weight_scale * self.weight[None] * self.affine(w)[:, None, :, None, None]  # [N, O, I, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, n * c, h, width), weight.flatten(0, 1), padding=self.padding, groups=n)
        return out.reshape(n, -1, h, width)


class AdaIN(nn.Module):
    """Adaptive instance normalization (StyleGAN eq. 1): y_s (x - mu(x)) / sigma(x) + y_b per
    channel, (y_s, y_b) = affine(w) with y_s's bias starting at 1."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.scale = EqualizedLinear(w_dim, channels, gain=1.0, bias_init=1.0)
        self.shift = EqualizedLinear(w_dim, channels, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.scale(w)[:, :, None, None] * F.instance_norm(x, eps=1e-8) + self.shift(w)[:, :, None, None]


class StyleLayer(nn.Module):
    """One style layer: (upsample ->) conv (none on version 1's constant) -> noise -> bias -> leaky
    ReLU (-> AdaIN on version 1; version 2 modulates the conv itself and scales by sqrt(2))."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, version: int,
                 conv: bool = True, up: bool = False):
        super().__init__()
        self.version, self.up = version, up
        if version == 2:
            self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        else:
            self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
            self.adain = AdaIN(out_channels, w_dim)
        self.noise = NoiseInput(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: str | torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample(x)
        if self.version == 2:
            x = self.conv(x, w)
        elif self.conv is not None:
            x = self.conv(x)
        x = F.leaky_relu(self.noise(x, noise) + self.bias[None, :, None, None], 0.2)
        # version 2: the code's activation gain sqrt(2), which keeps the demodulated signal's scale
        return self.adain(x, w) if self.version == 1 else x * math.sqrt(2)


class ToRGB(nn.Module):
    """Features -> image channels by a 1x1 conv: equalized (version 1) or modulated without
    demodulation (version 2, reading a style), linear output."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int, version: int):
        super().__init__()
        self.version = version
        if version == 2:
            self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
            self.bias = nn.Parameter(torch.zeros(image_channels))
        else:
            self.conv = EqualizedConv2d(in_channels, image_channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.version == 2:
            return self.conv(x, w) + self.bias[None, :, None, None]
        return self.conv(x)


class Synthesis(nn.Module):
    """Styles ws [N, num_layers, w_dim] -> images [N, C, r, r] at any resolution r of the net up to
    its own (progressive growing: `alpha` < 1 blends the new resolution's ToRGB with the previous
    one's, upsampled; version 1 only, version 2 always runs at full resolution)."""

    def __init__(self, w_dim: int, data_shape: Sequence[int], version: int, channel_base: int, channel_max: int):
        super().__init__()
        k = log2_side(data_shape)
        self.version, self.resolution = version, 2**k
        self.resolutions = [2**i for i in range(2, k + 1)]
        self.num_layers = num_style_layers(self.resolution)

        def channels(r: int) -> int:
            return max(1, min(channel_base // r, channel_max))

        self.const = nn.Parameter(torch.randn(1, channels(4), 4, 4) if version == 2 else torch.ones(1, channels(4), 4, 4))
        layers, to_rgb = [], []
        for r in self.resolutions:
            c_in, c_out = channels(max(4, r // 2)), channels(r)
            if r == 4:
                first = [StyleLayer(c_in, c_out, w_dim, 4, version, conv=False)] if version == 1 else []
                layers += first + [StyleLayer(c_in, c_out, w_dim, 4, version)]
            else:
                layers += [StyleLayer(c_in, c_out, w_dim, r, version, up=True), StyleLayer(c_out, c_out, w_dim, r, version)]
            to_rgb.append(ToRGB(c_out, data_shape[0], w_dim, version))
        self.layers, self.to_rgb = nn.ModuleList(layers), nn.ModuleList(to_rgb)

    def layer_resolutions(self) -> list[int]:
        """The resolution of each layer's noise input, in order."""
        return [layer.noise.fixed.shape[-1] for layer in self.layers]

    def forward(self, ws: torch.Tensor, noise: str | Sequence[torch.Tensor] = "random", resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        resolution = resolution or self.resolution
        if resolution not in self.resolutions:
            raise ValueError(f"resolution={resolution}: this synthesis network runs at {self.resolutions}")
        if self.version == 2 and (resolution != self.resolution or alpha != 1):
            raise ValueError("version 2 runs at full resolution only")
        noises = [noise] * len(self.layers) if isinstance(noise, str) else list(noise)
        active = self.resolutions[: self.resolutions.index(resolution) + 1]
        x, image, previous, index = self.const.expand(len(ws), -1, -1, -1), None, None, 0
        layers = iter(self.layers)
        for level, r in enumerate(active):
            previous = x
            for _ in range(1 if r == 4 and self.version == 2 else 2):
                x = next(layers)(x, ws[:, index], noises[index])
                index += 1
            if self.version == 2:  # the skip generator: ToRGB reads the next layer's style
                rgb = self.to_rgb[level](x, ws[:, min(index, self.num_layers - 1)])
                image = rgb if image is None else upsample(image) + rgb
        if self.version == 2:
            return image
        image = self.to_rgb[len(active) - 1](x, None)
        if alpha < 1 and len(active) > 1:  # fading in: the previous resolution's image, upsampled
            faded = F.interpolate(self.to_rgb[len(active) - 2](previous, None), scale_factor=2, mode="nearest")
            image = torch.lerp(faded, image, alpha)
        return image


class StyleGenerator(nn.Module):
    """z [N, latent_dim] -> images [N, C, R, R] (linear output, images in about [-1, 1]): the mapping
    network, the tracked mean w (`w_avg`, a buffer the module updates), and the synthesis network."""

    def __init__(self, latent_dim: int, data_shape: Sequence[int], version: int = 1, w_dim: int = 512,
                 mapping_layers: int = 8, channel_base: int = 16384, channel_max: int = 512):
        super().__init__()
        if version not in (1, 2):
            raise UserError(f"model.version={version}: pass 1 (StyleGAN) or 2 (StyleGAN2)")
        self.version = version
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_layers)
        self.synthesis = Synthesis(w_dim, data_shape, version, channel_base, channel_max)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @property
    def num_layers(self) -> int:
        return self.synthesis.num_layers

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """z -> the same w for every layer, ws [N, num_layers, w_dim]."""
        return self.mapping(z)[:, None].expand(-1, self.num_layers, -1)

    @torch.no_grad()
    def track_w_avg(self, ws: torch.Tensor, beta: float) -> None:
        """w_avg <- beta w_avg + (1 - beta) mean(w) over the batch (the code's dlatent_avg)."""
        self.w_avg.copy_(ws[:, 0].mean(0).lerp(self.w_avg, beta))

    def forward(self, z: torch.Tensor, psi: float | None = None, cutoff: int | None = None,
                noise: str | Sequence[torch.Tensor] = "fixed") -> torch.Tensor:
        ws = self.styles(z)
        if psi is not None:
            ws = truncate_styles(ws, self.w_avg, psi, cutoff)
        return self.synthesis(ws, noise)


class ResidualDiscriminator(nn.Module):
    """StyleGAN2's residual discriminator (sec. 4.1, fig. 7c): FromRGB at full resolution, then per
    resolution down to 8x8 a block [conv 3x3, conv 3x3, downsample] plus a skip [downsample, 1x1 conv
    without bias], summed and divided by sqrt(2); at 4x4 the minibatch standard deviation, a 3x3 conv,
    a fully connected layer and the logit."""

    def __init__(self, data_shape: Sequence[int], channel_base: int = 32768, channel_max: int = 512):
        super().__init__()
        k = log2_side(data_shape)

        def channels(r: int) -> int:
            return max(1, min(channel_base // r, channel_max))

        self.from_rgb = EqualizedConv2d(data_shape[0], channels(2**k), 1)
        self.blocks = nn.ModuleList()
        for i in range(k, 2, -1):
            r = 2**i
            self.blocks.append(nn.ModuleDict({
                "conv0": EqualizedConv2d(channels(r), channels(r), 3),
                "conv1": EqualizedConv2d(channels(r), channels(r // 2), 3),
                "skip": EqualizedConv2d(channels(r), channels(r // 2), 1, gain=1.0, bias=False)}))
        c4 = channels(4)
        self.epilogue = nn.Sequential(MinibatchStdDev(), EqualizedConv2d(c4 + 1, c4, 3), nn.LeakyReLU(0.2),
                                      nn.Flatten(), EqualizedLinear(c4 * 16, c4), nn.LeakyReLU(0.2),
                                      EqualizedLinear(c4, 1, gain=1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(x), 0.2)
        for block in self.blocks:
            skip = block["skip"](downsample(x))
            x = F.leaky_relu(block["conv0"](x), 0.2)
            x = F.leaky_relu(block["conv1"](downsample(x)), 0.2)
            x = (x + skip) / math.sqrt(2)
        return self.epilogue(x).squeeze(1)


def discriminator(data_shape: Sequence[int], version: int = 1, channel_base: int = 16384,
                  channel_max: int = 512) -> nn.Module:
    """Version 1: ProGAN's discriminator (grown with G); version 2: the residual one."""
    if version == 1:
        return ProGANDiscriminator(data_shape, channel_base, channel_max)
    return ResidualDiscriminator(data_shape, channel_base, channel_max)
