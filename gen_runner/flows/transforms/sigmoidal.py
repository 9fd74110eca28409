"""The deep sigmoidal flow (DSF) transformer of Huang, Krueger, Lacoste & Courville 2018, "Neural
Autoregressive Flows", sec. 3.1, eq. 8: y = logit(sum_j w_j sigmoid(a_j x + b_j)) with a_j > 0
and w on the simplex, a strictly increasing bijection of the real line.

Parameters as the authors' code (CW-Huang/NAF, torchkit `SigmoidFlow`): per layer [a (H), b (H),
w (H)], a = softplus(.) + 1e-6, w = softmax(.); their experiments' defaults are H = 16 units
(`--num_ds_dim 16`) and one layer (`--num_ds_layers 1`); more layers compose several DSFs per
dimension, as their `IAF_DSF` does (the dense DDSF of eq. 9 is not implemented). Two deviations:
the softplus argument is shifted so that zero parameters give a = 1, b = 0, w uniform, the identity
(this package's convention); and everything is computed in log space (log-sigmoids and
log-sum-exps, with 1 - sum_j w_j sigmoid(z_j) = sum_j w_j sigmoid(-z_j)), so the code's clipping of
the mixture to [delta/2, 1 - delta/2] is not needed and the map stays onto the real line.
The inverse is numerical (`numerical.invert`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gen_runner.flows.transforms.numerical import invert
from gen_runner.flows.transforms.univariate import Univariate

__all__ = ["DeepSigmoidal"]

MIN_SLOPE = 1e-6  # the authors' delta, added to every a_j
SLOPE_SHIFT = math.log(math.expm1(1.0 - MIN_SLOPE))  # softplus(0 + SLOPE_SHIFT) + MIN_SLOPE = 1


class DeepSigmoidal(Univariate):
    """`layers` DSF layers of `hidden` sigmoids each: num_params = 3 * hidden * layers."""

    def __init__(self, hidden: int = 16, layers: int = 1):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.num_params = 3 * hidden * layers

    @staticmethod
    def _layer(x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_a, b, raw_w = params.chunk(3, -1)
        a = F.softplus(raw_a + SLOPE_SHIFT) + MIN_SLOPE
        # log-softmax and log-sigmoids written with logsumexp/logaddexp: the same values, and far
        # cheaper than F.log_softmax / F.logsigmoid on small CPU tensors when threads are contended
        log_w = raw_w - torch.logsumexp(raw_w, -1, keepdim=True)
        z = a * x[..., None] + b
        zero = z.new_zeros(())
        log_sig, log_sig_neg = -torch.logaddexp(zero, -z), -torch.logaddexp(zero, z)
        log_p = torch.logsumexp(log_w + log_sig, -1)  # log of the mixture
        log_q = torch.logsumexp(log_w + log_sig_neg, -1)  # log of one minus it
        log_dp = torch.logsumexp(log_w + torch.log(a) + log_sig + log_sig_neg, -1)
        return log_p - log_q, log_dp - log_p - log_q

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logabsdet = torch.zeros_like(x)
        for layer_params in params.chunk(self.layers, -1):
            x, log_derivative = self._layer(x, layer_params)
            logabsdet = logabsdet + log_derivative
        return x, logabsdet

    def inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return invert(lambda x: self.forward(x, params), y)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, layers={self.layers}"
