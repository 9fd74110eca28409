"""Invertible residual blocks y = x + g(x) with Lip(g) < 1 and their log-determinant estimators:
i-ResNet (Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen 2019, "Invertible Residual Networks") and
Residual Flows (Chen, Behrmann, Duvenaud & Jacobsen 2019, "Residual Flows for Invertible Generative
Modeling").

With J = dg/dx, ||J||_2 < 1, the map is invertible (Banach's fixed point x = y - g(x)) and

    log|det(I + J)| = sum_{k>=1} (-1)^(k+1) tr(J^k) / k,

each trace by Hutchinson's estimator v^T J^k v (v ~ N(0, I), one draw per example), the products
v^T J^k as k vector-Jacobian products:

- `estimator="truncated"` (i-ResNet, sec. 3.2): the first `n_terms` terms (biased), differentiated
  by backpropagating through the series;
- `estimator="unbiased"` (Residual Flows, sec. 3.1, the "Russian roulette" estimator): terms up to
  n = N + `n_exact_terms`, N ~ Geometric(`geom_p`) on {1, 2, ...} drawn once per batch, term k
  weighted by 1 / P(N >= k - n_exact_terms), so its expectation is the whole series. The first
  n_exact_terms + 1 terms are always computed (weight 1), as the authors' code does
  (lib/layers/iresblock.py); out of training it keeps `n_exact_terms_eval` terms exact (their 20).
- `neumann_grad` (Residual Flows, sec. 3.2, eq. 8): no backpropagation through the series. The
  gradient of log det(I + J) is tr((I + J)^-1 dJ) = sum_{k>=0} (-1)^k tr(J^k dJ): the weighted sum
  of the v^T J^k (k < n) is formed without a graph, and one differentiable vector-Jacobian product
  with it gives the gradient, so memory does not grow with n. The log-det's value is the series'
  estimate above; its gradient is the Neumann series with the same N, v and weights (the term
  v^T J^k dJ v weighted as the log-det's term k + 1, whose gradient it is in expectation).

Out of training, a block whose input has at most `exact_max_dim` dimensions takes the exact
log-det: the brute-force Jacobian (D vector-Jacobian products) and slogdet;
`gen-runner eval` sets it from `eval.exact_logdet_max_dim`. The inverse is the fixed-point
iteration x <- y - g(x) from x = y - g(y) (i-ResNet, algorithm 1), until no element moves by more
than `inverse_tol` * (1 + |y|), at most `inverse_iterations` times; it converges linearly at rate
Lip(g). The inverse is not differentiable (it serves sampling).

Deviation: the official code's Neumann terms use the weight of the log-det's term k rather than
k + 1 (both unbiased); the memory-saving "backward-in-forward" of sec. 3.2 (gradients computed in
the forward pass) is not implemented.
"""
from __future__ import annotations

import torch
from torch import nn

from gen_runner.errors import UserError
from gen_runner.flows.transforms.base import Transform

__all__ = ["Residual", "exact_logdet"]

ESTIMATORS = ("truncated", "unbiased")


def exact_logdet(g: torch.Tensor, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """log|det(I + dg/dx)| per example from g's graph on x, by the dense Jacobian (one
    vector-Jacobian product per output dimension); differentiable with `create_graph`."""
    with torch.enable_grad():
        flat = g.flatten(1)
        rows = [torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True, create_graph=create_graph)[0].flatten(1)
                for i in range(flat.shape[1])]
    jacobian = torch.stack(rows, 1)
    eye = torch.eye(jacobian.shape[-1], dtype=x.dtype, device=x.device)
    return torch.linalg.slogdet(eye + jacobian).logabsdet


class Residual(Transform):
    """y = x + net(x) for a `net` of Lipschitz constant < 1 (gen_runner/nets/lipschitz.py), with
    the log-det estimators of the module docstring."""

    def __init__(self, net: nn.Module, estimator: str = "unbiased", n_terms: int = 5, n_exact_terms: int = 2,
                 geom_p: float = 0.5, neumann_grad: bool = True, n_exact_terms_eval: int = 20,
                 inverse_iterations: int = 100, inverse_tol: float = 1e-6, exact_max_dim: int = 16):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise UserError(f"model.flow.block.estimator={estimator!r}: choose {' or '.join(ESTIMATORS)}")
        if n_terms < 1 or n_exact_terms < 0 or n_exact_terms_eval < 0:
            raise UserError(f"model.flow.block: n_terms={n_terms} must be >= 1, n_exact_terms={n_exact_terms} "
                            f"and n_exact_terms_eval={n_exact_terms_eval} >= 0")
        if not 0 < geom_p < 1:
            raise UserError(f"model.flow.block.geom_p={geom_p}: a geometric distribution's p lies in (0, 1)")
        if inverse_iterations < 1 or inverse_tol <= 0:
            raise UserError(f"model.flow.block: inverse_iterations={inverse_iterations} must be >= 1 and "
                            f"inverse_tol={inverse_tol} > 0")
        self.net, self.estimator, self.n_terms, self.geom_p = net, estimator, n_terms, geom_p
        self.n_exact_terms, self.n_exact_terms_eval, self.neumann_grad = n_exact_terms, n_exact_terms_eval, neumann_grad
        self.inverse_iterations, self.inverse_tol, self.exact_max_dim = inverse_iterations, inverse_tol, exact_max_dim

    def exact(self, x: torch.Tensor) -> bool:
        return not self.training and x[0].numel() <= self.exact_max_dim

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.is_inference_mode_enabled():  # Lightning's validation: the log-det needs autograd
            with torch.inference_mode(False):
                y, logdet = self.forward(x.clone(), context)
            return y.detach(), logdet.detach()
        grad = torch.is_grad_enabled()
        with torch.enable_grad():
            inner = x if x.requires_grad else x.detach().requires_grad_()
            g = self.net(inner)
            logdet = exact_logdet(g, inner, create_graph=grad) if self.exact(x) else self.estimate(g, inner)
        return (x + g, logdet) if grad else (x + g.detach(), logdet.detach())

    def terms(self) -> list[float]:
        """The series' weights, one per computed term k = 1..n: ones (truncated), or the Russian
        roulette's 1 / P(N >= k - n_exact) with N ~ Geometric(p) drawn now (torch's generator)."""
        if self.estimator == "truncated":
            return [1.0] * self.n_terms
        exact = self.n_exact_terms if self.training else self.n_exact_terms_eval
        n = exact + int(torch.empty(()).geometric_(self.geom_p).item())
        return [(1 - self.geom_p) ** -max(k - exact - 1, 0) for k in range(1, n + 1)]

    def estimate(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The log-det of x + g(x) per example from g's graph on x (module docstring)."""
        weights = self.terms()
        v = torch.randn_like(x)
        neumann = self.training and self.neumann_grad
        backprop = self.training and not neumann
        w, value = v, x.new_zeros(x.shape[0])
        series = v  # sum_{k < n} (-1)^k weight_{k+1} v^T J^k: the Neumann series' product with v
        for k, weight in enumerate(weights, 1):
            w = torch.autograd.grad(g, x, w, retain_graph=True, create_graph=backprop)[0]
            value = value + (-1) ** (k + 1) / k * weight * (w * v).flatten(1).sum(1)
            if neumann and k < len(weights):
                series = series + (-1) ** k * weights[k] * w
        if not neumann:
            return value
        surrogate = (torch.autograd.grad(g, x, series.detach(), create_graph=True)[0] * v).flatten(1).sum(1)
        return value.detach() + surrogate - surrogate.detach()

    @torch.no_grad()
    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, tol = y - self.net(y), self.inverse_tol * (1 + y.abs())
        for _ in range(self.inverse_iterations - 1):
            x, previous = y - self.net(x), x
            if ((x - previous).abs() <= tol).all():
                break
        return x, -self.forward(x)[1]
