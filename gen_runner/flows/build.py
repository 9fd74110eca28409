"""Flow architectures from a config: one builder for every model option, so that NICE, RealNVP,
Glow, the spline flows, MAF, IAF, NAF, SOS and UMNN differ only in their `model=` YAML (the
transformer, the layer structure, the permutation, the normalization), as the taxonomy of
Papamakarios et al. 2021 ("Normalizing Flows for Probabilistic Modeling and Inference", sec. 3)
lays them out: coupling vs (inverse) autoregressive structure x univariate transformer.

Vectors [D]: `vector_flow`. Images [C, H, W]: `image_flow` with a layout:
- "multiscale": Glow's (Kingma & Dhariwal 2018, fig. 2): per scale a squeeze, `steps` x [ActNorm,
  mixing, channel coupling], then half the channels factored out with a learned prior;
- "realnvp": RealNVP's checkerboard/channel pattern (gen_runner/flows/realnvp.py);
- "flatten": the pixels as one vector, as MAF, NAF, UMNN, SOS and NICE treat MNIST.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from gen_runner.flows.distributions import StandardLogistic, StandardNormal
from gen_runner.flows.flow import Flow
from gen_runner.flows.multiscale import MultiScale
from gen_runner.flows.realnvp import realnvp_image
from gen_runner.flows.transforms.autoregressive import MaskedAutoregressive
from gen_runner.flows.transforms.base import Compose, Inverse, Transform
from gen_runner.flows.transforms.coupling import Coupling, TanhLogScale, alternating_mask, channel_mask
from gen_runner.flows.transforms.elementwise import Logit, Scale, SoftClip
from gen_runner.flows.transforms.linear import InvertibleConv1x1, Permutation
from gen_runner.flows.transforms.normalization import ActNorm, BatchNorm
from gen_runner.flows.transforms.reshape import Flatten, Squeeze
from gen_runner.flows.transforms.univariate import Affine, Univariate
from gen_runner.nets.glow import GlowConditioner, GlowPrior
from gen_runner.nets.made import MADE, autoregressive_order
from gen_runner.nets.mlp import MLP
from gen_runner.nets.resnet import ResNet

__all__ = ["flow", "image_flow", "mixing", "normalization", "vector_flow"]

STRUCTURES = ("coupling", "autoregressive", "inverse_autoregressive")
BASES = {"normal": StandardNormal, "logistic": StandardLogistic}


def flow(data_shape: Sequence[int], vector: dict | None = None, image: dict | None = None) -> Flow:
    """The flow for examples of `data_shape`: `vector_flow(D, **vector)` for [D] points,
    `image_flow((C, H, W), **image)` for images; a model config gives both option sets."""
    if len(data_shape) == 1:
        return vector_flow(data_shape[0], **(vector or {}))
    if len(data_shape) == 3:
        return image_flow(tuple(data_shape), **(image or {}))
    raise ValueError(f"flows model vectors (D,) or images (C, H, W), got data of shape {tuple(data_shape)}")


def mixing(kind: str | None, features: int, seed: int = 0) -> Transform | None:
    """The linear mixing between layers: None, "reverse", "shuffle" (a fixed random permutation),
    "conv1x1" (Glow's invertible 1x1 convolution, a dense matrix for vectors) or "lu" (its LU form)."""
    if kind is None:
        return None
    if kind == "reverse":
        return Permutation.reverse(features)
    if kind == "shuffle":
        return Permutation.shuffle(features, seed=seed)
    if kind in ("conv1x1", "lu"):
        return InvertibleConv1x1(features, lu=kind == "lu", seed=seed)
    raise ValueError(f"unknown permutation {kind!r}; choose reverse, shuffle, conv1x1, lu or null")


def normalization(kind: str | None, features: int) -> Transform | None:
    """None, "actnorm" (Glow's, data-initialised) or "batchnorm" (RealNVP's batch-norm bijection)."""
    if kind is None:
        return None
    if kind == "actnorm":
        return ActNorm(features)
    if kind == "batchnorm":
        return BatchNorm(features)
    raise ValueError(f"unknown normalization {kind!r}; choose actnorm, batchnorm or null")


def _layers(*layers: Transform | None) -> list[Transform]:
    return [layer for layer in layers if layer is not None]


def vector_flow(
    dim: int,
    transformer: Callable[[], Univariate] = Affine,
    structure: str = "coupling",
    num_layers: int = 5,
    hidden: Sequence[int] = (64, 64),
    activation: str = "relu",
    order: str = "reverse",
    permutation: str | None = None,
    normalization_layer: str | None = None,
    standardize: bool = False,
    tanh_scale: bool = False,
    softclip: float | None = None,
    final_scale: bool = False,
    base: str = "normal",
    zero_init: bool = True,
    seed: int = 0,
) -> Flow:
    """`num_layers` coupling or (inverse) autoregressive layers over [B, dim] vectors.

    - `transformer`: a factory of the univariate transformer (one instance per layer), e.g.
      `Affine`, `Additive`, `RationalQuadraticSpline(bins=8, bound=5)`;
    - `structure`: "coupling" (alternating even/odd masks, an MLP conditioner from the kept half),
      "autoregressive" (MAF: a MADE conditioner, density in one pass) or "inverse_autoregressive"
      (IAF: sampling in one pass, density in `dim` passes);
    - `order`: the MADEs' input orders, "reverse" (alternating, MAF's default), "sequential" or "random";
    - `permutation` (a `mixing` kind) and `normalization_layer` ("actnorm" or "batchnorm") after
      every layer but the last;
    - `standardize`: an ActNorm first, initialised from the first batch, so that the layers (and
      a spline's [-B, B]) see standardized data; `tanh_scale`: RealNVP's bounded log-scale;
      `softclip`: a `SoftClip(bound)` between layers (for polynomial transformers, as zuko's SOSPF);
      `final_scale`: NICE's diagonal scaling layer on top; `base`: "normal" or "logistic" (NICE).
    `zero_init`: conditioners' output layers start at zero, so the flow starts at its transformers'
    zero-parameter map (the identity for most); false keeps PyTorch's default initialization, as
    MAF's code (and zuko) do, which trained MAF faster on the 2-D benchmark.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"unknown flow structure {structure!r}; choose {', '.join(STRUCTURES)}")
    if base not in BASES:
        raise ValueError(f"unknown base distribution {base!r}; choose {', '.join(BASES)}")
    if structure == "coupling" and dim < 2:
        raise ValueError(f"a coupling flow splits a vector in two, so dim must be at least 2, got {dim}")
    layers: list[Transform] = _layers(ActNorm(dim) if standardize else None)
    for i in range(num_layers):
        g = transformer()
        if structure == "coupling":
            mask = alternating_mask(dim, i)
            a, b = int(mask.sum()), int((~mask).sum())
            conditioner: nn.Module = MLP(a, g.num_params * b, hidden, activation, zero_last=zero_init)
            if tanh_scale:
                conditioner = nn.Sequential(conditioner, TanhLogScale(b))
            layer: Transform = Coupling(mask, conditioner, g)
        else:
            degrees = autoregressive_order(dim, order, layer=i, seed=seed)
            layer = MaskedAutoregressive(MADE(degrees, hidden, g.num_params, activation=activation,
                                              zero_last=zero_init), g)
            if structure == "inverse_autoregressive":
                layer = Inverse(layer)
        layers.append(layer)
        if i < num_layers - 1:
            layers += _layers(normalization(normalization_layer, dim), mixing(permutation, dim, seed + i),
                              SoftClip(softclip) if softclip is not None else None)
    if final_scale:
        layers.append(Scale(dim))
    return Flow(Compose(*layers), BASES[base](dim))


def multiscale_flow(
    shape: tuple[int, int, int],
    transformer: Callable[[], Univariate] = Affine,
    num_scales: int = 2,
    steps: int = 4,
    hidden_channels: int = 64,
    conditioner: str = "glow",
    num_blocks: int = 2,
    permutation: str | None = "lu",
    normalization_layer: str | None = "actnorm",
    split_prior: bool = True,
    seed: int = 0,
) -> Transform:
    """Glow's multi-scale architecture with any coupling transformer: per scale a squeeze, then
    `steps` x [normalization, mixing, coupling of the second half of the channels on the first],
    then (all scales but the last) half the channels factored out, with Glow's learned prior
    N(mean(kept), std(kept)^2) when `split_prior`. Conditioners: "glow" (conv3x3-conv1x1-zero
    conv3x3 with `hidden_channels`) or "resnet" (RealNVP's, `num_blocks` blocks). Returns the
    transform to a flat z of C*H*W dimensions (gen_runner/flows/multiscale.py)."""
    c, h, w = shape
    if h % 2**num_scales or w % 2**num_scales:
        raise ValueError(f"a {c}x{h}x{w} image cannot be squeezed {num_scales} times: "
                         f"H and W must be divisible by {2 ** num_scales}")
    levels, priors = [], []
    for scale in range(num_scales):
        c, h, w = 4 * c, h // 2, w // 2
        level: list[Transform] = [Squeeze()]
        for step in range(steps):
            g = transformer()
            if conditioner == "glow":
                net: nn.Module = GlowConditioner(c, g.num_params * c, hidden_channels)
            elif conditioner == "resnet":
                net = ResNet(c, g.num_params * c, hidden_channels, num_blocks)
            else:
                raise ValueError(f"unknown conditioner {conditioner!r}; choose glow or resnet")
            level += _layers(normalization(normalization_layer, c), mixing(permutation, c, seed + 100 * scale + step))
            level.append(Coupling(channel_mask(c, h, w, 0), net, g))
        levels.append(Compose(*level))
        if scale < num_scales - 1:
            c //= 2
            if split_prior:
                priors.append(Coupling(torch.zeros(c, h, w, dtype=torch.bool), GlowPrior(c, c), Affine()))
            else:
                priors.append(Compose())
    return MultiScale(levels, shape, priors)


def image_flow(shape: tuple[int, int, int], layout: str = "multiscale", logit_alpha: float | None = None,
               **options) -> Flow:
    """A flow over [C, H, W] images of dequantized pixels in [0, 1): `layout` "multiscale"
    (`multiscale_flow(**options)`), "realnvp" (`realnvp_image(**options)`) or "flatten"
    (`vector_flow(C*H*W, **options)` on the flattened pixels). `logit_alpha` prepends RealNVP's
    logit transform (MAF's is alpha = 1e-6)."""
    pre = _layers(Logit(logit_alpha) if logit_alpha is not None else None)
    if layout == "realnvp":
        return realnvp_image(shape, logit_alpha=logit_alpha, **options)
    if layout == "multiscale":
        return Flow(Compose(*pre, multiscale_flow(shape, **options)), StandardNormal(math.prod(shape)))
    if layout == "flatten":
        inner = vector_flow(math.prod(shape), **options)
        return Flow(Compose(*pre, Flatten(shape), inner.transform), inner.base)
    raise ValueError(f"unknown image layout {layout!r}; choose multiscale, realnvp or flatten")
