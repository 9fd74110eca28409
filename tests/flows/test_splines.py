"""The spline transformers (Durkan et al. 2019, "Neural Spline Flows" and "Cubic-Spline Flows"):
invertibility, log-derivatives against autograd, identity at zero, monotonicity, the tails, a
hand-computed rational-quadratic value; and both splines inside a coupling and a MADE layer."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from gen_runner.flows.transforms.splines import CubicSpline, RationalQuadraticSpline
from gen_runner.flows.transforms.univariate import Univariate

BOUND, BINS = 3.0, 8
SPLINES = {"rq": RationalQuadraticSpline, "cubic": CubicSpline}


def make(kind: str) -> Univariate:
    return SPLINES[kind](bins=BINS, bound=BOUND)


def knots(raw: torch.Tensor, minimum: float = 1e-3) -> torch.Tensor:
    """The K + 1 knots, -B to B, that unnormalized bin sizes [..., K] give: [..., K + 1]."""
    fractions = minimum + (1 - minimum * raw.shape[-1]) * torch.softmax(raw, -1)
    end = torch.full_like(raw[..., :1], BOUND)
    return torch.cat([-end, -BOUND + 2 * BOUND * fractions[..., :-1].cumsum(-1), end], -1)


def problem(kind: str, dtype: torch.dtype, scale: float, rows: int = 16, seed: int = 0):
    """A spline, parameters [rows, n, P] drawn N(0, scale^2) (one draw per row), and inputs x and
    outputs y [rows, n], each row spread over [-1.5B, 1.5B] and holding its own knots (the bin
    edges in x, resp. in y), -B and B among them."""
    spline = make(kind)
    generator = torch.Generator().manual_seed(seed)
    raw = (scale * torch.randn(rows, spline.num_params, generator=generator, dtype=torch.float64)).to(dtype)
    grid = torch.linspace(-1.5 * BOUND, 1.5 * BOUND, 40, dtype=dtype).expand(rows, -1)
    x = torch.cat([grid, knots(raw[:, :BINS])], -1)
    y = torch.cat([grid, knots(raw[:, BINS:2 * BINS])], -1)
    return spline, raw[:, None, :].expand(-1, x.shape[1], -1), x, y


@pytest.mark.parametrize("kind", SPLINES)
@pytest.mark.parametrize(("dtype", "scale", "atol"), [(torch.float32, 0.5, 1e-4), (torch.float64, 3.0, 1e-5)])
def test_round_trip(kind: str, dtype: torch.dtype, scale: float, atol: float):
    """x -> y -> x and y -> x -> y. A round trip errs by about eps B / (dy/dx): float32 is tested on
    milder splines: N(0, 1) parameters already give derivatives under 1e-3 (errors up to 6e-4) in places."""
    spline, params, x, y = problem(kind, dtype, scale)
    out, forward_logabsdet = spline(x, params)
    x_again, inverse_logabsdet = spline.inverse(out, params)
    torch.testing.assert_close(x_again, x, atol=atol, rtol=0)
    torch.testing.assert_close(inverse_logabsdet, -forward_logabsdet, atol=100 * atol, rtol=0)
    inverted, _ = spline.inverse(y, params)
    torch.testing.assert_close(spline(inverted, params)[0], y, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", SPLINES)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_log_derivative_matches_autograd(kind: str, inverse: bool):
    spline, params, x, y = problem(kind, torch.float64, scale=2.0)
    inputs = (y if inverse else x).requires_grad_()
    outputs, logabsdet = (spline.inverse if inverse else spline)(inputs, params)
    (derivative,) = torch.autograd.grad(outputs.sum(), inputs)
    torch.testing.assert_close(logabsdet, derivative.log())


@pytest.mark.parametrize("kind", SPLINES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_at_zero_parameters(kind: str, dtype: torch.dtype):
    spline, _, x, _ = problem(kind, dtype, scale=1.0)
    zeros = torch.zeros(*x.shape, spline.num_params, dtype=dtype)
    for direction in (spline.forward, spline.inverse):
        out, logabsdet = direction(x, zeros)
        torch.testing.assert_close(out, x, atol=1e-6, rtol=0)
        torch.testing.assert_close(logabsdet, torch.zeros_like(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", SPLINES)
def test_strictly_increasing(kind: str):
    spline, params, _, _ = problem(kind, torch.float64, scale=3.0, rows=32)
    z = torch.linspace(-1.5 * BOUND, 1.5 * BOUND, 2001, dtype=torch.float64).expand(32, -1)
    params = params[:, :1].expand(-1, z.shape[1], -1)
    for direction in (spline.forward, spline.inverse):
        out, _ = direction(z, params)
        assert (out.diff(dim=-1) > 0).all()


@pytest.mark.parametrize("kind", SPLINES)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_finite_parameter_gradients_at_and_beyond_the_bounds(kind: str, inverse: bool):
    """At -B and B the spline's own gradients are finite; beyond, the identity does not depend on
    the parameters at all, and no NaN from the (discarded) clamped spline leaks into them."""
    spline = make(kind)
    z = torch.tensor([-2 * BOUND, -BOUND - 1e-9, -BOUND, BOUND, BOUND + 1e-9, 2 * BOUND], dtype=torch.float64)
    params = (3.0 * torch.randn(z.shape[0], spline.num_params, generator=torch.Generator().manual_seed(1),
                                dtype=torch.float64)).requires_grad_()
    out, logabsdet = (spline.inverse if inverse else spline)(z, params)
    (grad,) = torch.autograd.grad((out + logabsdet).sum(), params)
    assert torch.isfinite(grad).all()
    outside = z.abs() > BOUND
    assert (grad[outside] == 0).all() and (grad[~outside] != 0).any()
    torch.testing.assert_close(out[outside], z[outside], atol=0, rtol=0)


@pytest.mark.parametrize(("cls", "count"), [(RationalQuadraticSpline, lambda k: 3 * k - 1),
                                            (CubicSpline, lambda k: 2 * k)])
def test_num_params_is_what_forward_consumes(cls: type, count: Callable[[int], int]):
    for bins in (1, 2, 5):
        spline = cls(bins=bins, bound=BOUND)
        assert spline.num_params == count(bins)
        x = torch.linspace(-BOUND, BOUND, 101, dtype=torch.float64)
        params = torch.randn(spline.num_params, generator=torch.Generator().manual_seed(bins), dtype=torch.float64)
        params = params.expand(x.shape[0], -1).clone().requires_grad_()
        y, logabsdet = spline(x, params)
        (grad,) = torch.autograd.grad((y + logabsdet).sum(), params)
        used = grad.abs().sum(0) > 0
        # A single bin's width and height fractions are 1 whatever their parameters.
        assert used.all() if bins > 1 else not used.any()
        with pytest.raises(ValueError, match="parameters per element"):
            spline(x, torch.zeros(x.shape[0], spline.num_params + 1, dtype=torch.float64))


def test_rational_quadratic_by_hand():
    """Two bins on [-1, 1], no minimum sizes: widths softmax(0, 0) -> knots -1, 0, 1; heights
    softmax(log 3, 0) = (3/4, 1/4) of 2 -> knots -1, 0.5, 1; interior derivative softplus(log(1 + e)
    + log(e - 1)) = log(e^2) = 2, the ends 1. At x = 0.5 (bin 2: s = 0.5, delta = 2, 1, xi = 0.5):
    y = 0.5 + 0.5 (0.5/4 + 2/4) / (0.5 + (1 + 2 - 1)/4) = 0.8125 and dy/dx = 0.25 (1/4 + 2 * 0.5/4
    + 2/4) / 1^2 = 0.25. At x = -0.5 (bin 1: s = 1.5, delta = 1, 2): y = -1 + 1.5 (1.5/4 + 1/4) /
    1.5 = -0.375 and dy/dx = (2/4 + 2 * 1.5/4 + 1/4) = 1.5 (NSF eqs. 4-5)."""
    spline = RationalQuadraticSpline(bins=2, bound=1.0, min_bin_width=0.0, min_bin_height=0.0, min_derivative=0.0)
    params = torch.tensor([0.0, 0.0, math.log(3.0), 0.0, math.log1p(math.e)], dtype=torch.float64).expand(2, -1)
    x = torch.tensor([0.5, -0.5], dtype=torch.float64)
    y, logabsdet = spline(x, params)
    torch.testing.assert_close(y, torch.tensor([0.8125, -0.375], dtype=torch.float64))
    torch.testing.assert_close(logabsdet, torch.tensor([math.log(0.25), math.log(1.5)], dtype=torch.float64))
    x_again, inverse_logabsdet = spline.inverse(y, params)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)


def test_cubic_end_derivatives():
    """At zero parameters every knot derivative is 1 (the identity); an end bin flatter than 1/2
    has its end derivative lowered to twice its slope (Steffen's limit), else it is 1."""
    spline = CubicSpline(bins=2, bound=1.0, min_bin_width=0.0, min_bin_height=0.0)
    # Widths (1, 1); heights softmax(0, log 3) -> (0.5, 1.5): slopes 0.5 and 1.5, both ends 1.
    # Heights softmax(0, log 7) -> (0.25, 1.75): slopes 0.25 -> left end 0.5, and 1.75 -> right end 1.
    params = torch.tensor([[0.0, 0.0, 0.0, math.log(3.0)], [0.0, 0.0, 0.0, math.log(7.0)]], dtype=torch.float64)
    _, logabsdet = spline(torch.tensor([-1.0, -1.0], dtype=torch.float64), params)
    torch.testing.assert_close(logabsdet.exp(), torch.tensor([1.0, 0.5], dtype=torch.float64))
    _, logabsdet = spline(torch.tensor([1.0, 1.0], dtype=torch.float64), params)
    torch.testing.assert_close(logabsdet.exp(), torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="min_bin_width"):
        RationalQuadraticSpline(bins=8, min_bin_width=0.2)
    with pytest.raises(ValueError, match="min_derivative"):
        RationalQuadraticSpline(min_derivative=1.0)
    with pytest.raises(ValueError, match="bound"):
        CubicSpline(bound=0.0)
    assert "bins=8, bound=3.0" in repr(RationalQuadraticSpline())
    assert "min_derivative=0.001" in repr(RationalQuadraticSpline())
    assert "bins=4, bound=2.0" in repr(CubicSpline(bins=4, bound=2.0))
