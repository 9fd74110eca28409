"""FFJORD (Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud 2019, "FFJORD: Free-form Continuous
Dynamics for Scalable Reversible Generative Models"): a flow of continuous normalizing flow blocks
(gen_runner/flows/transforms/cnf.py) trained by maximum likelihood with Hutchinson's trace estimator.

Architectures, as the authors' code builds them (train_toy.py, train_cnf.py, lib/odenvp.py):
- vectors: `num_blocks` CNFs in sequence, each an MLP ODE net (`vector`: hidden widths, activation,
  layer; the toy experiments: one block of 3 x 64 concat-squash tanh units, T = 0.5 learnable);
- images, `image.layout`:
  - "multiscale": the ODENVP. Logit pixels, then per scale `num_blocks` CNFs, a squeeze and
    `num_blocks` more CNFs, and half the channels factored out (RealNVP's multi-scale), the last
    scale without a squeeze. Conv ODE nets of 3x3 "concat" layers (`image.hidden` channels,
    softplus). `image.num_scales`: at most the scales that keep H, W >= 4 (the code's default);
  - "flatten": the logit pixels as one vector, an MLP ODE net (as the paper's tabular models).

Training adds the optional regularizers of Finlay et al. 2020 (`kinetic_weight`, `jacobian_weight`,
integrated along the solve) to the loss, and logs the function evaluations of the forward solve
(`train/nfe_forward`) and of the backward pass (`train/nfe_backward`) summed over blocks. The
likelihood at eval takes the exact trace for data of at most `eval.exact_logdet_max_dim` dimensions
(validation during training: at most 16), Hutchinson's estimate above.

Deviations: Logit is the symmetric alpha + (1 - 2 alpha) x (flows/transforms/elementwise.py); the
eval tolerances default tighter than training's (the code evaluates at the training tolerances).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial

import torch

from gen_runner.capabilities import eval_metric
from gen_runner.errors import UserError
from gen_runner.flows.distributions import StandardNormal
from gen_runner.flows.flow import Flow
from gen_runner.flows.module import FlowModule
from gen_runner.flows.multiscale import MultiScale
from gen_runner.flows.transforms.base import Compose, Transform
from gen_runner.flows.transforms.cnf import CNF
from gen_runner.flows.transforms.elementwise import Logit
from gen_runner.flows.transforms.reshape import Flatten, Squeeze
from gen_runner.nets.odenet import ODENet

__all__ = ["FFJORD", "ffjord_flow"]

LAYOUTS = ("multiscale", "flatten")


def _blocks(shape: Sequence[int], num_blocks: int, net: Mapping, cnf: Mapping) -> list[Transform]:
    return [CNF(ODENet(shape, **net), math.prod(shape), **cnf) for _ in range(num_blocks)]


def _max_scales(h: int, w: int) -> int:
    """The ODENVP's default: one scale per halving while H and W are at least 4."""
    scales = 0
    while h >= 4 and w >= 4:
        scales, h, w = scales + 1, h // 2, w // 2
    return scales


def _multiscale(shape: tuple[int, int, int], num_blocks: int, num_scales: int | None, net: Mapping,
                cnf: Mapping) -> Transform:
    c, h, w = shape
    scales = _max_scales(h, w) if num_scales is None else num_scales
    if not 1 <= scales <= max(_max_scales(h, w), 1):
        raise UserError(f"model.image.num_scales={num_scales}: a {c}x{h}x{w} image takes 1 to "
                        f"{max(_max_scales(h, w), 1)} scales (H and W >= 4 before each squeeze), or null for the most")
    levels = []
    for scale in range(scales):
        level = _blocks((c, h, w), num_blocks, net, cnf)
        if scale < scales - 1:
            if h % 2 or w % 2:
                raise UserError(f"a {c}x{h}x{w} map cannot be squeezed: pass a smaller model.image.num_scales")
            c, h, w = 4 * c, h // 2, w // 2
            level += [Squeeze(), *_blocks((c, h, w), num_blocks, net, cnf)]
            c //= 2  # half factored out
        levels.append(Compose(*level))
    return MultiScale(levels, shape)


def ffjord_flow(data_shape: Sequence[int], num_blocks: int = 1, vector: Mapping | None = None,
                image: Mapping | None = None, cnf: Mapping | None = None) -> Flow:
    """The FFJORD flow for examples of `data_shape` (module docstring). `vector`: the ODE nets of
    points ({hidden, activation, layer}, gen_runner/nets/odenet.py); `image`: {layout, num_scales,
    logit_alpha} and the ODE nets of images; `cnf`: the keyword arguments of every `CNF` block."""
    if num_blocks < 1:
        raise UserError(f"model.num_blocks={num_blocks}: stack at least one CNF block")
    cnf = dict(cnf or {})
    if len(data_shape) == 1:
        dim = data_shape[0]
        return Flow(Compose(*_blocks((dim,), num_blocks, vector or {}, cnf)), StandardNormal(dim))
    if len(data_shape) != 3:
        raise UserError(f"ffjord models vectors (D,) or images (C, H, W), got data of shape {tuple(data_shape)}")
    options = dict(image or {})
    layout, num_scales = options.pop("layout", "multiscale"), options.pop("num_scales", None)
    pre = Logit(options.pop("logit_alpha", 1e-6))
    shape, dim = tuple(data_shape), math.prod(data_shape)
    if layout == "multiscale":
        body = _multiscale(shape, num_blocks, num_scales, options, cnf)
    elif layout == "flatten":
        body = Compose(Flatten(shape), *_blocks((dim,), num_blocks, options, cnf))
    else:
        raise UserError(f"model.image.layout={layout!r}: choose {' or '.join(LAYOUTS)}")
    return Flow(Compose(pre, body), StandardNormal(dim))


class FFJORD(FlowModule):
    """FFJORD's maximum-likelihood training (module docstring); the keys of configs/model/ffjord.yaml."""

    def __init__(self, data: dict, optimizer=None, *, num_blocks: int = 1, vector: Mapping | None = None,
                 image: Mapping | None = None, time_length: float = 0.5, train_T: bool = True,
                 solver: str = "dopri5", atol: float = 1e-5, rtol: float = 1e-5, eval_atol: float = 1e-6,
                 eval_rtol: float = 1e-6, trace_estimator: str = "gaussian", adjoint: bool = False,
                 kinetic_weight: float = 0.0, jacobian_weight: float = 0.0, dequantization: str = "uniform",
                 variational: Mapping | None = None, warmup_steps: int = 0):
        if min(kinetic_weight, jacobian_weight) < 0:
            raise UserError(f"model.kinetic_weight={kinetic_weight}, model.jacobian_weight={jacobian_weight}: "
                            "regularization weights must be >= 0 (0: off)")
        cnf = dict(time_length=time_length, train_T=train_T, solver=solver, atol=atol, rtol=rtol,
                   eval_atol=eval_atol, eval_rtol=eval_rtol, trace_estimator=trace_estimator, adjoint=adjoint)
        flow = partial(ffjord_flow, num_blocks=num_blocks, vector=vector, image=image, cnf=cnf)
        super().__init__(flow, data, optimizer, dequantization, variational, warmup_steps)
        self.kinetic_weight, self.jacobian_weight = kinetic_weight, jacobian_weight
        for block in self.blocks:
            block.regularize = kinetic_weight > 0 or jacobian_weight > 0

    @property
    def blocks(self) -> list[CNF]:
        return [m for m in self.flow.modules() if isinstance(m, CNF)]

    def training_step(self, batch, batch_idx: int):
        out = super().training_step(batch, batch_idx)
        blocks = self.blocks
        self.log("train/nfe_forward", float(sum(b.nfe_forward for b in blocks)))
        if blocks[0].regularize:
            kinetic, jacobian = torch.stack([b.regularization for b in blocks]).sum(0)
            self.log_dict({"train/kinetic": kinetic, "train/jacobian": jacobian})
            out["loss"] = out["loss"] + self.kinetic_weight * kinetic + self.jacobian_weight * jacobian
        return out

    def on_after_backward(self) -> None:
        self.log("train/nfe_backward", float(sum(b.nfe_backward for b in self.blocks)))

    @eval_metric("nll (the exact trace up to eval.exact_logdet_max_dim dimensions); images: bpd")
    def likelihood(self, ctx):
        """FlowModule's (which sets the blocks' exact_max_dim from eval.exact_logdet_max_dim), with the
        trace and the solver's tolerances in the protocol."""
        metrics, protocol = super().likelihood(ctx)
        blocks = self.blocks
        exact = all(b.exact for b in blocks)
        protocol["trace"] = "exact" if exact else f"Hutchinson ({blocks[0].trace_estimator}), one draw per solve"
        protocol["solver"] = f"{blocks[0].solver}, atol {blocks[0].eval_atol}, rtol {blocks[0].eval_rtol}"
        return metrics, protocol
