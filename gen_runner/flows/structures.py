"""The layer structures of vector flows (Papamakarios et al. 2021, "Normalizing Flows for
Probabilistic Modeling and Inference", sec. 3.1-3.2): coupling, autoregressive and inverse
autoregressive. Each is a factory that `build.vector_flow` calls once per layer,

    structure(dim, transformer, index, *, hidden, activation, zero_init, seed) -> Transform

`transformer` is the layer's `Univariate`; `index` counts the layers from 0 (masks alternate with it,
MADE orders too); `hidden`, `activation` and `zero_init` size and initialise the conditioner network;
`seed` fixes anything drawn at random. Options of one structure only (`order`, `tanh_scale`) are
keywords set in its config (configs/model/flow/{vector,image}/structure/*.yaml).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from gen_runner.flows.transforms.autoregressive import MaskedAutoregressive
from gen_runner.flows.transforms.base import Inverse, Transform
from gen_runner.flows.transforms.coupling import Coupling, TanhLogScale, alternating_mask
from gen_runner.flows.transforms.univariate import Univariate
from gen_runner.nets.made import MADE, autoregressive_order
from gen_runner.nets.mlp import MLP

__all__ = ["autoregressive", "coupling", "inverse_autoregressive"]


def coupling(dim: int, transformer: Univariate, index: int, *, hidden: Sequence[int] = (64, 64),
             activation: str = "relu", zero_init: bool = True, seed: int = 0, tanh_scale: bool = False) -> Transform:
    """A coupling layer (NICE, RealNVP): the even features condition the odd ones on even `index`,
    the other way round on odd, through an MLP. `tanh_scale`: RealNVP's bounded log-scale (sec. 4.1,
    `TanhLogScale`) on the conditioner's first outputs, for an affine transformer."""
    if dim < 2:
        raise ValueError(f"a coupling flow splits a vector in two, so dim must be at least 2, got {dim}")
    mask = alternating_mask(dim, index)
    a, b = int(mask.sum()), int((~mask).sum())
    conditioner: nn.Module = MLP(a, transformer.num_params * b, hidden, activation, zero_last=zero_init)
    if tanh_scale:
        conditioner = nn.Sequential(conditioner, TanhLogScale(b))
    return Coupling(mask, conditioner, transformer)


def autoregressive(dim: int, transformer: Univariate, index: int, *, hidden: Sequence[int] = (64, 64),
                   activation: str = "relu", zero_init: bool = True, seed: int = 0,
                   order: str = "reverse") -> Transform:
    """MAF's layer: a MADE conditioner, density in one pass, sampling in `dim`. `order`: the MADE's
    input order, "reverse" (alternating with `index`, MAF's default), "sequential" or "random"."""
    degrees = autoregressive_order(dim, order, layer=index, seed=seed)
    return MaskedAutoregressive(MADE(degrees, hidden, transformer.num_params, activation=activation,
                                     zero_last=zero_init), transformer)


def inverse_autoregressive(dim: int, transformer: Univariate, index: int, *, hidden: Sequence[int] = (64, 64),
                           activation: str = "relu", zero_init: bool = True, seed: int = 0,
                           order: str = "reverse") -> Transform:
    """IAF's layer (Kingma et al. 2016), the inverse of MAF's: sampling in one pass, density in `dim`."""
    return Inverse(autoregressive(dim, transformer, index, hidden=hidden, activation=activation,
                                  zero_init=zero_init, seed=seed, order=order))
