"""The architectures of i-ResNet (Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen 2019, "Invertible
Residual Networks") and Residual Flows (Chen, Behrmann, Duvenaud & Jacobsen 2019, "Residual Flows
for Invertible Generative Modeling"): ActNorm then an invertible residual block, repeated
(flows/transforms/residual.py: the block and its log-det estimators; nets/lipschitz.py: the
spectrally normalised layers and activations). The two models differ in their options only
(configs/model/iresnet.yaml, residual_flow.yaml): the estimator, the activation, the coefficient.

- vectors [D]: `vector.num_layers` blocks whose g is an MLP D -> hidden... -> D of spectrally
  normalised linear layers;
- images [C, H, W] (`image`): the logit of the dequantized pixels, then per scale a squeeze (all
  scales but the first when `squeeze_first` is false: Residual Flows' MNIST model; i-ResNet squeezes
  first), `blocks` blocks whose g is conv(k1) -> act -> conv(k2) -> act -> conv(k3) with
  `hidden_channels` (`kernels`, the papers' 3-1-3), and with `factor_out` half the channels
  factored out after every scale but the last (RealNVP's multi-scale, gen_runner/flows/multiscale.py;
  i-ResNet's multiScale) or none (Residual Flows' default).

Each layer of g has ||W||_2 <= `coeff` and the activations are 1-Lipschitz, so Lip(g) <= coeff^3 < 1.

Deviations: the Residual Flows code pre-activates g (act first) and ends with fully connected
blocks (fc_end); here g starts with its linear map (i-ResNet's form, eq. in sec. 2) and there are
no final fully connected blocks. ActNorm comes before every block (the Residual Flows code's
stacks; i-ResNet's: between blocks).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import nn

from gen_runner.errors import UserError
from gen_runner.flows.distributions import StandardNormal
from gen_runner.flows.flow import Flow
from gen_runner.flows.multiscale import MultiScale
from gen_runner.flows.transforms.base import Compose, Transform
from gen_runner.flows.transforms.elementwise import Logit
from gen_runner.flows.transforms.normalization import ActNorm
from gen_runner.flows.transforms.reshape import Flatten, Squeeze
from gen_runner.flows.transforms.residual import Residual
from gen_runner.nets.lipschitz import SpectralConv2d, SpectralLinear
from gen_runner.nets.lipschitz import activation as make_activation

__all__ = ["residual_flow"]


def _mlp(dim: int, hidden: Sequence[int], act: str, lipschitz: Mapping) -> nn.Module:
    sizes = [dim, *hidden, dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [make_activation(act)] if i else []
        layers.append(SpectralLinear(a, b, **lipschitz))
    return nn.Sequential(*layers)


def _convnet(shape: tuple[int, int, int], hidden: int, kernels: Sequence[int], act: str,
             lipschitz: Mapping) -> nn.Module:
    c, h, w = shape
    sizes = [c] + [hidden] * (len(kernels) - 1) + [c]
    layers: list[nn.Module] = []
    for i, k in enumerate(kernels):
        layers += [make_activation(act)] if i else []
        layers.append(SpectralConv2d(sizes[i], sizes[i + 1], k, (h, w), **lipschitz))
    return nn.Sequential(*layers)


def _stack(num: int, features: int, net, block: Mapping) -> list[Transform]:
    layers: list[Transform] = []
    for _ in range(num):
        layers += [ActNorm(features), Residual(net(), **block)]
    return layers


def residual_image(shape: tuple[int, int, int], block: Mapping, lipschitz: Mapping, act: str,
                   num_scales: int = 2, blocks: int = 4, hidden_channels: int = 64,
                   kernels: Sequence[int] = (3, 1, 3), squeeze_first: bool = True, factor_out: bool = True,
                   logit_alpha: float | None = 1e-6) -> Flow:
    c, h, w = shape
    squeezes = num_scales - (not squeeze_first)
    if num_scales < 1 or h % 2**squeezes or w % 2**squeezes:
        raise UserError(f"model.flow.image.num_scales={num_scales}: a {c}x{h}x{w} image cannot be squeezed "
                        f"{squeezes} times (H and W must be divisible by {2 ** max(squeezes, 0)})")
    levels: list[Transform] = []
    for scale in range(num_scales):
        level: list[Transform] = []
        if scale or squeeze_first:
            c, h, w = 4 * c, h // 2, w // 2
            level.append(Squeeze())
        level += _stack(blocks, c, lambda: _convnet((c, h, w), hidden_channels, kernels, act, lipschitz), block)
        levels.append(Compose(*level))
        if factor_out and scale < num_scales - 1:
            c //= 2
    body = MultiScale(levels, shape) if factor_out else Compose(*levels, Flatten((c, h, w)))
    pre = [Logit(logit_alpha)] if logit_alpha is not None else []
    return Flow(Compose(*pre, body), StandardNormal(math.prod(shape)))


def residual_flow(data_shape: Sequence[int], vector: Mapping | None = None, image: Mapping | None = None,
                  block: Mapping | None = None, coeff: float = 0.97, n_power_iterations: int = 5,
                  activation: str = "lipswish") -> Flow:
    """The flow for examples of `data_shape` (module docstring). `vector`: {num_layers, hidden};
    `image`: `residual_image`'s options; `block`: the keyword arguments of every `Residual` (the
    estimator); `coeff`: every layer's spectral-norm bound, in (0, 1); `n_power_iterations` per
    training step; `activation`: elu (i-ResNet) or lipswish (Residual Flows)."""
    if not 0 < coeff < 1:
        raise UserError(f"model.flow.coeff={coeff}: the Lipschitz bound must lie in (0, 1) for invertibility")
    lipschitz = {"coeff": coeff, "n_iterations": n_power_iterations}
    block = dict(block or {})
    if len(data_shape) == 1:
        dim, options = data_shape[0], dict(vector or {})
        num_layers, hidden = options.pop("num_layers", 5), options.pop("hidden", (64, 64))
        if options:
            raise UserError(f"model.flow.vector: unknown keys {sorted(options)}; it takes num_layers and hidden")
        layers = _stack(num_layers, dim, lambda: _mlp(dim, hidden, activation, lipschitz), block)
        return Flow(Compose(*layers), StandardNormal(dim))
    if len(data_shape) == 3:
        return residual_image(tuple(data_shape), block, lipschitz, activation, **(image or {}))
    raise UserError(f"residual flows model vectors (D,) or images (C, H, W), got data of shape {tuple(data_shape)}")
