"""Flow architectures from a config: one builder for every model option, so that NICE, RealNVP,
Glow, the spline flows, MAF, IAF, NAF, SOS and UMNN differ only in their `model=` YAML (the
transformer, the layer structure, the permutation, the normalization), as the taxonomy of
Papamakarios et al. 2021 ("Normalizing Flows for Probabilistic Modeling and Inference", sec. 3)
lays them out: coupling vs (inverse) autoregressive structure x univariate transformer.

Vectors [D]: `vector_flow`. Images [C, H, W]: `image_flow` with a layout:
- "multiscale": Glow's (Kingma & Dhariwal 2018, fig. 2): per scale a squeeze, `steps` x
  [normalization, permutation, channel coupling], then half the channels factored out with a learned prior;
- "realnvp": RealNVP's checkerboard/channel pattern (gen_runner/flows/realnvp.py);
- "flatten": the pixels as one vector, as MAF, NAF, UMNN, SOS and NICE treat MNIST.

The layers are factories: Hydra builds each from a `_target_` node with `_partial_: true`, one
YAML file per option in configs/model/flow/{vector,image}/<layer>/ (chosen with e.g.
`model/flow/image/permutation=reverse`), and the builders call them as

    transformer()                              -> Univariate, once per layer
    structure(dim, transformer, index, *, hidden, activation, zero_init, seed)
                                               -> Transform, one vector layer; index counts from 0
    permutation(features, seed=seed)           -> Transform, between layers (features or channels)
    normalization(features)                    -> Transform, between layers
    conditioner(in_channels, out_channels, hidden_channels)
                                               -> nn.Module, [B, in, H, W] -> [B, out, H, W], the
                                                  network of a multi-scale coupling

(transformers: flows/transforms/univariate.py, splines.py, ...; structures: flows/structures.py;
permutations: flows/transforms/linear.py; normalizations: flows/transforms/normalization.py;
conditioners: nets/glow.py, nets/resnet.py). Options of one factory only (a spline's bins, a
MADE's order, a ResNet's blocks) are keys of its node; sizes every option shares (hidden,
hidden_channels) are the builder's, so that a model's sizes survive a switch of layer. `null`, or
no key, means no permutation or normalization layer. A new layer is a class or function with its
signature plus a YAML file in its folder; this file does not change.
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
from gen_runner.flows.structures import coupling
from gen_runner.flows.transforms.base import Compose, Transform
from gen_runner.flows.transforms.coupling import Coupling, channel_mask
from gen_runner.flows.transforms.elementwise import Logit, Scale, SoftClip
from gen_runner.flows.transforms.normalization import ActNorm
from gen_runner.flows.transforms.reshape import Flatten, Squeeze
from gen_runner.flows.transforms.univariate import Affine, Univariate
from gen_runner.nets.glow import GlowConditioner, GlowPrior

__all__ = ["flow", "image_flow", "multiscale_flow", "vector_flow"]

BASES = {"normal": StandardNormal, "logistic": StandardLogistic}
LAYERS = ("transformer", "structure", "permutation", "normalization", "conditioner")
OPTIONAL = ("permutation", "normalization")  # null: no such layer
RENAMED = {"normalization_layer": "normalization", "batch_norm": "normalization"}  # before layers were factories
Structure = Callable[..., Transform]
Layer = Callable[..., Transform]


def _check_layers(kind: str, options: dict) -> None:
    """Layers must be factories. A string here is a dotted override meant for a config group, or the
    config of a checkpoint saved before layers were factories (as are the old keys in RENAMED)."""
    for key, value in options.items():
        layer = RENAMED.get(key, key)
        if key in RENAMED or (key in LAYERS and isinstance(value, str)):
            none = f", or model.flow.{kind}.{layer}=null for none" if layer in OPTIONAL else ""
            raise ValueError(
                f"model.flow.{kind}.{key}={value!r} is not a layer factory: pick one with "
                f"model/flow/{kind}/{layer}=<option> (a slash, not a dot; options in gen-runner --help){none}; "
                "a checkpoint saved before flow layers were factories cannot be rebuilt: retrain it")
        if key in LAYERS and key not in OPTIONAL and value is None:
            raise ValueError(f"model.flow.{kind}.{key}=null: a flow needs a {key}; "
                             f"pick one with model/flow/{kind}/{key}=<option> (options in gen-runner --help)")


def flow(data_shape: Sequence[int], vector: dict | None = None, image: dict | None = None) -> Flow:
    """The flow for examples of `data_shape`: `vector_flow(D, **vector)` for [D] points,
    `image_flow((C, H, W), **image)` for images; a model config gives both option sets."""
    if len(data_shape) == 1:
        _check_layers("vector", vector or {})
        return vector_flow(data_shape[0], **(vector or {}))
    if len(data_shape) == 3:
        _check_layers("image", image or {})
        return image_flow(tuple(data_shape), **(image or {}))
    raise ValueError(f"flows model vectors (D,) or images (C, H, W), got data of shape {tuple(data_shape)}")


def _layers(*layers: Transform | None) -> list[Transform]:
    return [layer for layer in layers if layer is not None]


def vector_flow(
    dim: int,
    transformer: Callable[[], Univariate] = Affine,
    structure: Structure = coupling,
    num_layers: int = 5,
    hidden: Sequence[int] = (64, 64),
    activation: str = "relu",
    permutation: Layer | None = None,
    normalization: Layer | None = None,
    standardize: bool = False,
    softclip: float | None = None,
    final_scale: bool = False,
    base: str = "normal",
    zero_init: bool = True,
    seed: int = 0,
) -> Flow:
    """`num_layers` layers of `structure` over [B, dim] vectors.

    - `transformer`: the univariate transformer's factory (one instance per layer), e.g. `Affine`,
      `Additive`, `RationalQuadraticSpline(bins=8, bound=5)`;
    - `structure`: the layer's factory (gen_runner/flows/structures.py): `coupling` (alternating
      even/odd masks, an MLP conditioner from the kept half), `autoregressive` (MAF: a MADE
      conditioner, density in one pass) or `inverse_autoregressive` (IAF: sampling in one pass,
      density in `dim` passes); `hidden` and `activation` size its conditioner;
    - `permutation` and `normalization`: factories of the layers after every layer but the last
      (normalization first), or None;
    - `standardize`: an ActNorm first, initialised from the first batch, so that the layers (and
      a spline's [-B, B]) see standardized data; `softclip`: a `SoftClip(bound)` between layers
      (for polynomial transformers, as zuko's SOSPF); `final_scale`: NICE's diagonal scaling layer
      on top; `base`: "normal" or "logistic" (NICE).
    `zero_init`: conditioners' output layers start at zero, so the flow starts at its transformers'
    zero-parameter map (the identity for most); false keeps PyTorch's default initialization, as
    MAF's code (and zuko) do, which trained MAF faster on the 2-D benchmark.
    """
    if base not in BASES:
        raise ValueError(f"unknown base distribution {base!r}; choose {', '.join(BASES)}")
    layers: list[Transform] = _layers(ActNorm(dim) if standardize else None)
    for i in range(num_layers):
        layers.append(structure(dim, transformer(), i, hidden=hidden, activation=activation,
                                zero_init=zero_init, seed=seed))
        if i < num_layers - 1:
            layers += _layers(normalization(dim) if normalization is not None else None,
                              permutation(dim, seed=seed + i) if permutation is not None else None,
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
    conditioner: Callable[..., nn.Module] = GlowConditioner,
    permutation: Layer | None = None,
    normalization: Layer | None = None,
    split_prior: bool = True,
    seed: int = 0,
) -> Transform:
    """Glow's multi-scale architecture with any coupling transformer: per scale a squeeze, then
    `steps` x [normalization, permutation, coupling of the second half of the channels on the
    first], then (all scales but the last) half the channels factored out, with Glow's learned prior
    N(mean(kept), std(kept)^2) when `split_prior`. `conditioner(in_channels, out_channels,
    hidden_channels)` builds each coupling's network: `GlowConditioner` (Glow's conv3x3-conv1x1-zero
    conv3x3) or `ResNet` (RealNVP's). Glow itself takes `normalization=ActNorm` and
    `permutation=partial(InvertibleConv1x1, lu=True)`. Returns the transform to a flat z of C*H*W
    dimensions (gen_runner/flows/multiscale.py)."""
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
            level += _layers(normalization(c) if normalization is not None else None,
                             permutation(c, seed=seed + 100 * scale + step) if permutation is not None else None)
            level.append(Coupling(channel_mask(c, h, w, 0), conditioner(c, g.num_params * c, hidden_channels), g))
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
