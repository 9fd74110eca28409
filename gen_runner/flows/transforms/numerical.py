"""Numerical inversion of elementwise increasing maps, shared by the transformers that have no
closed-form inverse: the deep sigmoidal flow (Huang et al. 2018, "Neural Autoregressive Flows"),
the sum-of-squares polynomial flow (Jaini et al. 2019) and the unconstrained monotonic network
(Wehenkel & Louppe 2019, whose code inverts by a bracketing search too).

`bisection` solves f(x) = y for every element at once and without gradients: it widens a starting
interval by doubling until f(lo) <= y <= f(hi), halves it to the tolerance, and returns the root of
the chord of f over the final interval. `invert` gives that solution the gradient of the implicit
function theorem (Blondel et al. 2022, "Efficient and Modular Implicit Differentiation"),
dx/dy = 1 / f'(x) and dx/dtheta = -(df/dtheta) / f'(x), through one Newton step from it whose value
is zero: x = x* - (f(x*) - y) / f'(x*) with the residual's value removed. (A Newton step's value
would use the transformer's closed-form f', which for the UMNN is the integrand, not the derivative
of its quadrature, and so would converge only linearly; the chord is consistent with the computed f.)
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["bisection", "invert"]


def bisection(f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, lower: float | torch.Tensor = -1.0,
              upper: float | torch.Tensor = 1.0, tol: float = 1e-8, max_iter: int = 100) -> torch.Tensor:
    """x with f(x) = y for an elementwise increasing f (x and y of the same shape), without gradients.

    The interval [lower, upper] is first moved, where it misses y, to the side of the root with its
    width doubled, up to `max_iter` times: roots within about 2**max_iter of it are found; beyond
    that, or where f never reaches y, the nearer end of the last interval is returned. It is then
    halved until hi - lo <= tol * max(1, |x|) -- absolute below 1, relative above -- or until the
    working precision cannot split it (so a tol below the dtype's resolution costs no extra
    iterations), at most `max_iter` times. The returned root of the chord of f over [lo, hi] lies in
    the interval, hence within tol * max(1, |x|) of the root of the computed f, and in practice far
    closer (the chord's error is about width**2 |f''/f'| / 8), down to the conditioning of f in the
    working precision, about eps * |y| / f'(x).
    """
    with torch.no_grad():
        y = y.detach()
        lo = torch.as_tensor(lower, dtype=y.dtype, device=y.device).expand_as(y).clone()
        hi = torch.as_tensor(upper, dtype=y.dtype, device=y.device).expand_as(y).clone()
        f_lo, f_hi = f(lo), f(hi)
        for _ in range(max_iter):
            left, right = f_lo > y, f_hi < y  # the root is left of lo, or right of hi
            if not (left.any() or right.any()):
                break
            width = hi - lo
            lo, hi = (torch.where(left, lo - 2 * width, torch.where(right, hi, lo)),
                      torch.where(right, hi + 2 * width, torch.where(left, lo, hi)))
            f_lo, f_hi = f(lo), f(hi)
        for _ in range(max_iter):
            mid = (lo + hi) / 2
            if ((hi - lo <= tol * mid.abs().clamp(min=1.0)) | (mid == lo) | (mid == hi)).all():
                break
            f_mid = f(mid)
            below = f_mid <= y
            lo, f_lo = torch.where(below, mid, lo), torch.where(below, f_mid, f_lo)
            hi, f_hi = torch.where(below, hi, mid), torch.where(below, f_hi, f_mid)
        rise = f_hi - f_lo
        fraction = torch.where(rise > 0, (y - f_lo) / rise, 0.5).clamp(0.0, 1.0)
        return lo + fraction * (hi - lo)


def invert(forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor,
           lower: float = -1.0, upper: float = 1.0, tol: float = 1e-8, max_iter: int = 100
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, -log f'(x)) with f(x) = y, for `forward(x) -> (f(x), log f'(x))` elementwise increasing:
    x from `bisection` (same arguments), with the implicit gradient wrt y and everything f depends
    on; the log-derivative is evaluated at that x, so its gradient is right too."""
    x = bisection(lambda v: forward(v)[0], y, lower, upper, tol, max_iter)
    y_x, log_derivative = forward(x)
    residual = y - y_x
    x = x + (residual - residual.detach()) * torch.exp(-log_derivative.detach())
    return x, -forward(x)[1]
