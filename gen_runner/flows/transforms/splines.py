"""Monotone spline transformers with identity tails, for coupling and autoregressive flows:

- `RationalQuadraticSpline`: Durkan, Bekasov, Murray & Papamakarios 2019b, "Neural Spline Flows"
  (NeurIPS; sec. 3.1, eqs. 4-5 and appendix A), after Gregory & Delbourgo (1982);
- `CubicSpline`: Durkan, Bekasov, Murray & Papamakarios 2019a, "Cubic-Spline Flows" (ICML INNF
  workshop, arXiv:1906.02145): a monotone cubic Hermite spline whose knot derivatives follow
  Steffen (1990, "A simple method for monotonic interpolation in one dimension"), inverted in
  closed form with Blinn's (2007, "How to solve a cubic equation, part 5: back to numerics")
  stable cubic solver.

Both map [-B, B] onto itself through K bins whose widths and heights are softmaxes of unnormalized
parameters, each at least a minimum fraction of 2B (NSF sec. 3.1), and are the identity outside
[-B, B] (NSF's linear tails) with log-derivative 0 there. Both are exactly the identity when their
parameters are all zero: uniform bins and every knot derivative 1.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gen_runner.flows.transforms.univariate import Univariate

__all__ = ["CubicSpline", "RationalQuadraticSpline"]


def _take(index: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each [..., n] tensor's entry at the [..., 1] index, as [...]."""
    return tuple(t.gather(-1, index).squeeze(-1) for t in tensors)


class _BinnedSpline(Univariate):
    """The part both splines share: the bins from the first 2K parameters (K unnormalized widths,
    then K unnormalized heights), the bin lookup, and the identity tails outside [-bound, bound]."""

    def __init__(self, bins: int, bound: float, min_bin_width: float, min_bin_height: float):
        super().__init__()
        if bins < 1:
            raise ValueError(f"a spline needs at least one bin, got {bins}")
        if bound <= 0:
            raise ValueError(f"the spline's bound must be positive, got {bound}")
        for name, minimum in (("min_bin_width", min_bin_width), ("min_bin_height", min_bin_height)):
            if not 0 <= minimum * bins < 1:
                raise ValueError(f"{name} * bins must be in [0, 1), got {minimum} * {bins}")
        self.bins, self.bound = bins, float(bound)
        self.min_bin_width, self.min_bin_height = min_bin_width, min_bin_height

    def _edges(self, raw: torch.Tensor, minimum: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Knot coordinates [..., K + 1] from -B to B (the ends exact) and bin sizes [..., K] from the
        unnormalized sizes [..., K]: fractions minimum + (1 - K minimum) softmax(raw) of 2B."""
        fractions = minimum + (1 - minimum * self.bins) * torch.softmax(raw, -1)
        inner = -self.bound + 2 * self.bound * torch.cumsum(fractions[..., :-1], -1)
        end = inner.new_full((*inner.shape[:-1], 1), self.bound)
        edges = torch.cat([-end, inner, end], -1)
        return edges, edges.diff(dim=-1)

    @staticmethod
    def _locate(z: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """The bin [..., 1] of each z in [-B, B]: the last bin holds B."""
        return (z[..., None] >= edges[..., 1:-1]).sum(-1, keepdim=True)

    def _with_tails(self, spline: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                    z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spline inside [-B, B], the identity outside. The spline runs on z clamped to the
        interval, so elements in the tails give finite values (and gradients) that are discarded."""
        if params.shape[-1] != self.num_params:
            raise ValueError(f"{type(self).__name__} takes {self.num_params} parameters per element, "
                             f"got {params.shape[-1]}")
        inside = (z >= -self.bound) & (z <= self.bound)
        out, logabsdet = spline(z.clamp(-self.bound, self.bound), params)
        return torch.where(inside, out, z), torch.where(inside, logabsdet, torch.zeros_like(logabsdet))

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._with_tails(self._spline_forward, x, params)

    def inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._with_tails(self._spline_inverse, y, params)

    def extra_repr(self) -> str:
        return (f"bins={self.bins}, bound={self.bound}, min_bin_width={self.min_bin_width}, "
                f"min_bin_height={self.min_bin_height}")


class RationalQuadraticSpline(_BinnedSpline):
    """NSF's monotone rational-quadratic spline with K = `bins` bins on [-B, B], B = `bound`.

    num_params = 3K - 1, in this order: K unnormalized widths, K unnormalized heights (softmax,
    each bin at least `min_bin_width` / `min_bin_height` of 2B), and K - 1 unnormalized derivatives
    at the interior knots, min_derivative + softplus(raw + c) with c = log(exp(1 - min_derivative) - 1),
    so raw = 0 gives 1. The derivatives at -B and B are 1, matching the identity tails, so the
    density has no jump there. Forward by NSF eq. 4 with the log-derivative of eq. 5; inverse by
    the quadratic of appendix A, its root in the stable form 2c / (-b - sqrt(b^2 - 4ac)).
    """

    def __init__(self, bins: int = 8, bound: float = 3.0, min_bin_width: float = 1e-3,
                 min_bin_height: float = 1e-3, min_derivative: float = 1e-3):
        super().__init__(bins, bound, min_bin_width, min_bin_height)
        if not 0 <= min_derivative < 1:
            raise ValueError(f"min_derivative must be in [0, 1), got {min_derivative}")
        self.min_derivative = min_derivative
        self.num_params = 3 * bins - 1
        self.derivative_shift = math.log(math.expm1(1 - min_derivative))

    def _bin(self, z: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, ...]:
        """Per element, its bin's (x_k, w_k, y_k, h_k, delta_k, delta_k+1), the bin found from x or
        (inverse) from y."""
        k = self.bins
        xs, widths = self._edges(params[..., :k], self.min_bin_width)
        ys, heights = self._edges(params[..., k:2 * k], self.min_bin_height)
        interior = self.min_derivative + F.softplus(params[..., 2 * k:] + self.derivative_shift)
        one = interior.new_ones((*interior.shape[:-1], 1))
        derivatives = torch.cat([one, interior, one], -1)
        index = self._locate(z, ys if inverse else xs)
        return (*_take(index, xs, widths, ys, heights, derivatives), *_take(index + 1, derivatives))

    @staticmethod
    def _log_derivative(xi: torch.Tensor, s: torch.Tensor, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        """log dy/dx at xi in [0, 1] of a bin with slope s and end derivatives d0, d1 (NSF eq. 5)."""
        t = xi * (1 - xi)
        numerator = d1 * xi.square() + 2 * s * t + d0 * (1 - xi).square()
        return 2 * torch.log(s) + torch.log(numerator) - 2 * torch.log(s + (d0 + d1 - 2 * s) * t)

    def _spline_forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0, w, y0, h, d0, d1 = self._bin(x, params, inverse=False)
        s = h / w
        xi = (x - x0) / w
        t = xi * (1 - xi)
        y = y0 + h * (s * xi.square() + d0 * t) / (s + (d0 + d1 - 2 * s) * t)
        return y, self._log_derivative(xi, s, d0, d1)

    def _spline_inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0, w, y0, h, d0, d1 = self._bin(y, params, inverse=True)
        s = h / w
        dy, curvature = y - y0, d0 + d1 - 2 * s
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        xi = 2 * c / (-b - torch.sqrt((b.square() - 4 * a * c).clamp_min(0)))
        return x0 + xi * w, -self._log_derivative(xi, s, d0, d1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, min_derivative={self.min_derivative}"


def _cbrt(v: torch.Tensor) -> torch.Tensor:
    return torch.sign(v) * v.abs().pow(1 / 3)


def _outer_roots(cbar: torch.Tensor, dbar: torch.Tensor, end: torch.Tensor,
                 sqrt_disc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and third trigonometric roots of the depressed cubic x^3 + 3 cbar x + dbar
    (three real roots), the cubic depressed from the end coefficient `end` (Blinn 2007)."""
    theta = torch.atan2(end * sqrt_disc, -dbar).abs() / 3
    scale = 2 * torch.sqrt((-cbar).clamp_min(0))
    return scale * torch.cos(theta), scale * (-0.5 * torch.cos(theta) - math.sqrt(3) / 2 * torch.sin(theta))


@torch.no_grad()
def _unit_cubic_root(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """The root in [0, 1] of a xi^3 + b xi^2 + c xi = eta, the cubic increasing on [0, 1].

    Blinn (2007)'s algorithm on the homogeneous form p x^3 + 3q x^2 + 3r x + t: the one-real-root
    formula (Cardano's, in its cancellation-free form, depressed from the end, p or t, that suits
    the root) and the three-real-roots one (trigonometric: the largest root depressed from p, the
    smallest from t, the middle one by deflation). A vanishing leading coefficient (a near-quadratic
    or near-linear cubic, as at the identity) is handled by the t end, so no special case is
    needed. Deviation: Blinn picks one formula by the sign of the discriminant, which rounding gets
    wrong near a double root (in float32 already for end derivatives about 1e-3 of the bin's
    slope); here the four roots are all candidates, clamped to [0, 1], and the one with the
    smallest residual is the bin's.
    """
    p, q, r, t = a, b / 3, c / 3, -eta
    d1, d2, d3 = p * r - q * q, p * t - q * r, q * t - r * r
    disc = 4 * d1 * d3 - d2 * d2
    # One real root.
    from_p = q ** 3 * t >= p * r ** 3
    cbar = torch.where(from_p, d1, d3)
    dbar = torch.where(from_p, -2 * q * d1 + p * d2, -t * d2 + 2 * r * d3)
    t0 = torch.where(from_p, p, t).abs() * torch.sqrt((-disc).clamp_min(0))
    t0 = torch.where(dbar >= 0, -t0, t0)
    t1 = t0 - dbar
    u = _cbrt(t1 / 2)
    v = torch.where(t0 == t1, -u, -cbar / u)
    root = torch.where(cbar <= 0, u + v, -dbar / (u * u + v * v + cbar))
    single = torch.where(from_p, (root - q) / p, -t / (root + r))
    # Three real roots, each as a homogeneous pair (x, w).
    sqrt_disc = torch.sqrt(disc.clamp_min(0))
    first, third = _outer_roots(d1, -2 * q * d1 + p * d2, p, sqrt_disc)
    x_large, w_large = torch.where(first + third > 2 * q, first, third) - q, p
    first, third = _outer_roots(d3, -t * d2 + 2 * r * d3, t, sqrt_disc)
    x_small, w_small = -t, torch.where(first + third < 2 * r, first, third) + r
    e, f, g = w_large * w_small, -x_large * w_small - w_large * x_small, x_large * x_small
    middle = (r * f - q * g) / (-q * f + r * e)
    candidates = torch.stack([single, x_large / w_large, x_small / w_small, middle], -1).clamp(0, 1)
    residual = ((a[..., None] * candidates + b[..., None]) * candidates + c[..., None]) * candidates - eta[..., None]
    best = residual.abs().nan_to_num(nan=math.inf).argmin(-1, keepdim=True)
    return candidates.gather(-1, best).squeeze(-1)


class CubicSpline(_BinnedSpline):
    """The cubic-spline flows' monotone piecewise-cubic spline with K = `bins` bins on [-B, B].

    num_params = 2K: K unnormalized widths, then K unnormalized heights (softmax, each bin at
    least `min_bin_width` / `min_bin_height` of 2B). The knot derivatives are not parameters:
    at an interior knot, Steffen's d_k = min(2 s_k-1, 2 s_k, p_k), p_k = (s_k-1 w_k + s_k w_k-1) /
    (w_k-1 + w_k) (s the bins' slopes h / w, all positive); at -B and B, min(1, 2 s), the
    identity tails' slope 1 under Steffen's end limit |d| <= 2|s|. Every bin's end derivatives are
    then at most twice its slope, within Fritsch & Carlson's (1980) region of monotone cubics. In
    bin k, with xi = (x - x_k) / w_k, alpha = d_k / s_k and beta = d_k+1 / s_k, the Hermite cubic
    y = y_k + h_k (A xi^3 + B xi^2 + C xi), A = alpha + beta - 2, B = 3 - 2 alpha - beta, C = alpha,
    and dy/dx = s_k (3A xi^2 + 2B xi + C). The inverse solves that cubic in closed form
    (Blinn 2007), its gradient by the implicit-function theorem.

    Deviation: the authors' code (bayesiains/nsf) learns the two end derivatives, 3 s sigmoid(raw)
    (2K + 2 parameters); here they are the identity tails' slope 1, so the density is continuous at
    -B and B, except next to an end bin flatter than 1/2, whose end derivative Steffen's limit
    lowers to 2s (a cubic Hermite bin is not monotone with an end derivative over 3s).
    """

    def __init__(self, bins: int = 8, bound: float = 3.0, min_bin_width: float = 1e-3, min_bin_height: float = 1e-3):
        super().__init__(bins, bound, min_bin_width, min_bin_height)
        self.num_params = 2 * bins

    def _bin(self, z: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, ...]:
        """Per element, its bin's (x_k, w_k, y_k, h_k, s_k, A, B, C), the bin found from x or
        (inverse) from y."""
        k = self.bins
        xs, widths = self._edges(params[..., :k], self.min_bin_width)
        ys, heights = self._edges(params[..., k:], self.min_bin_height)
        slopes = heights / widths
        left, right = slopes[..., :-1], slopes[..., 1:]
        mean = (left * widths[..., 1:] + right * widths[..., :-1]) / (widths[..., :-1] + widths[..., 1:])
        interior = torch.minimum(2 * torch.minimum(left, right), mean)
        ends = (2 * slopes[..., :1]).clamp(max=1), (2 * slopes[..., -1:]).clamp(max=1)
        derivatives = torch.cat([ends[0], interior, ends[1]], -1)
        alpha, beta = derivatives[..., :-1] / slopes, derivatives[..., 1:] / slopes
        index = self._locate(z, ys if inverse else xs)
        return _take(index, xs, widths, ys, heights, slopes, alpha + beta - 2, 3 - 2 * alpha - beta, alpha)

    def _spline_forward(self, x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0, w, y0, h, s, a, b, c = self._bin(x, params, inverse=False)
        xi = (x - x0) / w
        y = y0 + h * ((a * xi + b) * xi + c) * xi
        return y, torch.log(s) + torch.log((3 * a * xi + 2 * b) * xi + c)

    def _spline_inverse(self, y: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0, w, y0, h, s, a, b, c = self._bin(y, params, inverse=True)
        eta = (y - y0) / h
        root = _unit_cubic_root(a, b, c, eta)
        # The value is the closed-form root; the gradient is the implicit-function theorem's,
        # d xi = d(eta - cubic(root)) / cubic'(root), exact at a root, where autograd through the
        # solver would meet its degenerate branches (0 / 0 at the identity) in the unselected roots.
        derivative = (3 * a * root + 2 * b) * root + c
        residual = eta - ((a * root + b) * root + c) * root
        xi = root + (residual - residual.detach()) / derivative
        return x0 + xi * w, -torch.log(s) - torch.log((3 * a * xi + 2 * b) * xi + c)
