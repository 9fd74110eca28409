"""The unconstrained monotonic neural network (UMNN) transformer of Wehenkel & Louppe 2019,
"Unconstrained Monotonic Neural Networks", as in their UMNN-MAF:
y = int_0^x f(t, h) dt + beta, with f > 0 a free-form network (an MLP on [t, h] with an ELU + 1
output) owned by this module and (h, beta) the parameters from the conditioner.

The integral is Clenshaw-Curtis quadrature on `steps` + 1 nodes (the authors' `nb_steps`
convention; exact for polynomials of degree <= `steps`). As in their code's backward (Leibniz's
rule), dy/dx is f(x, h) itself, not the derivative of the quadrature, so the log-derivative
log f(x, h) is exactly that of the map's gradient; the other gradients (h, the integrand's
weights) go through the quadrature by plain autograd (the paper's memory-saving backward, which
re-evaluates the integrand, is not implemented). The inverse is numerical (`numerical.invert`).

Defaults are those of the authors' UCI density-estimation script (UCIExperiments.py): an embedding
of 30, an integrand of 4 hidden layers of 50, 50 steps; ReLU hidden units as their `IntegrandNN`
(their UMNN-MAF integrand has LeakyReLUs of slope 0.01; `activation` picks any of `make_activation`).
Deviations: beta is a separate parameter (their offset is the embedding's first entry, which the
integrand also reads), their learned output scale (off by default there) is omitted, and the
integrand's last layer starts at zero, so f = 1 and zero parameters are the identity.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gen_runner.flows.transforms.numerical import invert
from gen_runner.flows.transforms.univariate import Univariate
from gen_runner.nets.mlp import MLP

__all__ = ["UnconstrainedMonotonic", "clenshaw_curtis"]


def clenshaw_curtis(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes cos(k pi / steps), k = 0..steps, and weights of Clenshaw-Curtis quadrature on [-1, 1]
    (float64; Trefethen 2008, "Is Gauss Quadrature Better than Clenshaw-Curtis?"):
    w_k = c_k / n (1 - sum_{j=1}^{n/2} b_j cos(2 j theta_k) / (4 j^2 - 1)), c_k = 1 at the ends
    and 2 inside, b_j = 1 for j = n/2 and 2 below."""
    theta = torch.arange(steps + 1, dtype=torch.float64) * math.pi / steps
    j = torch.arange(1, steps // 2 + 1, dtype=torch.float64)
    b = torch.where(2 * j == steps, 1.0, 2.0)
    c = torch.full((steps + 1,), 2.0, dtype=torch.float64)
    c[0] = c[-1] = 1.0
    weights = c / steps * (1 - (b * torch.cos(2 * j * theta[:, None]) / (4 * j**2 - 1)).sum(-1))
    return torch.cos(theta), weights


class UnconstrainedMonotonic(Univariate):
    """params = (h, beta), h of size `embedding`: num_params = embedding + 1. The integrand is
    MLP(1 + embedding, 1, `hidden`, `activation`), its output z mapped to f = ELU(z) + 1."""

    def __init__(self, embedding: int = 30, hidden: Sequence[int] = (50, 50, 50, 50), steps: int = 50,
                 activation: str = "relu"):
        super().__init__()
        self.embedding, self.steps = embedding, steps
        self.num_params = embedding + 1
        self.integrand = MLP(1 + embedding, 1, hidden, activation, zero_last=True)
        nodes, weights = clenshaw_curtis(steps)
        # on [0, 1]: int_0^x f = x * sum_k weights_k f(x nodes_k)
        self.register_buffer("nodes", (nodes + 1) / 2, persistent=False)
        self.register_buffer("weights", weights / 2, persistent=False)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, beta = params[..., :-1], params[..., -1]
        fixed = x.detach()
        # the quadrature nodes, then x itself (with its gradient) for f(x)
        t = torch.cat([fixed[..., None] * self.nodes.to(x.dtype), x[..., None]], -1)
        inputs = torch.cat([t[..., None], h[..., None, :].expand(*t.shape, self.embedding)], -1)
        z = self.integrand(inputs).squeeze(-1)
        f = F.elu(z) + 1
        integral = fixed * (f[..., :-1] * self.weights.to(x.dtype)).sum(-1)
        y = beta + integral + (x - fixed) * f[..., -1]  # the last term is zero, its x-gradient f(x)
        z_x = z[..., -1]
        return y, torch.log1p(z_x.clamp(min=0)) + z_x.clamp(max=0)  # log(ELU(z) + 1)

    def inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return invert(lambda x: self.forward(x, params), y)

    def extra_repr(self) -> str:
        return f"embedding={self.embedding}, steps={self.steps}"
