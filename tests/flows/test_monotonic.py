"""The transformers inverted numerically -- deep sigmoidal (NAF), sum-of-squares polynomial (SOS) and
unconstrained monotonic network (UMNN) -- and their shared bisection: round trips, log-derivatives
against autograd, monotonicity, implicit gradients of the inverse, closed-form values, and the
three inside coupling and masked autoregressive layers."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from layers import perturb

from gen_runner.flows.transforms.numerical import bisection, invert
from gen_runner.flows.transforms.sigmoidal import DeepSigmoidal
from gen_runner.flows.transforms.sos import SumOfSquares
from gen_runner.flows.transforms.umnn import UnconstrainedMonotonic, clenshaw_curtis
from gen_runner.flows.transforms.univariate import Univariate


def umnn() -> UnconstrainedMonotonic:
    """A small UMNN whose integrand is not constant (its last layer starts at zero)."""
    torch.manual_seed(1)
    return perturb(UnconstrainedMonotonic(embedding=4, hidden=(16, 16), steps=20), 0.1)


# name -> (transformer factory, scale of random parameters)
TRANSFORMERS: dict[str, tuple[Callable[[], Univariate], float]] = {
    "dsf": (DeepSigmoidal, 1.0),
    "dsf_deep": (lambda: DeepSigmoidal(hidden=4, layers=2), 1.0),
    "sos": (SumOfSquares, 0.3),
    "umnn": (umnn, 1.0),
}


def setup(name: str, dtype: torch.dtype, shape: tuple[int, ...] = (50, 4)):
    """The transformer, inputs spread over [-4, 4] and random parameters."""
    factory, scale = TRANSFORMERS[name]
    transformer = factory().to(dtype)
    torch.manual_seed(0)
    x = torch.linspace(-4, 4, math.prod(shape), dtype=dtype).view(shape)
    params = scale * torch.randn(*shape, transformer.num_params, dtype=dtype)
    return transformer, x, params


@pytest.mark.parametrize("name", TRANSFORMERS)
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_round_trip(name: str, dtype: torch.dtype, atol: float):
    transformer, x, params = setup(name, dtype)
    y, logabsdet = transformer(x, params)
    x_again, inverse_logabsdet = transformer.inverse(y, params)
    assert y.shape == logabsdet.shape == x.shape
    torch.testing.assert_close(x_again, x, atol=atol, rtol=0)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet, atol=10 * atol, rtol=0)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_log_derivative_matches_autograd(name: str):
    transformer, x, params = setup(name, torch.float64)
    x.requires_grad_(True)
    y, logabsdet = transformer(x, params)
    (derivative,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(derivative.log(), logabsdet)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_strictly_increasing(name: str):
    transformer, _, params = setup(name, torch.float64, shape=(3,))
    x = torch.linspace(-4, 4, 2001, dtype=torch.float64)[:, None].expand(-1, 3)
    y, _ = transformer(x, params.expand(2001, -1, -1))
    assert (y.diff(dim=0) > 0).all()


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_implicit_gradients_of_inverse(name: str):
    """dx/dy = 1 / f'(x), dx/dtheta = -(df/dtheta) / f'(x) for the conditioner's parameters and the
    transformer's own, and d(-log f'(x))/dy = -(log f')'(x) / f'(x), all against the forward's autograd."""
    transformer, x, params = setup(name, torch.float64, shape=(6, 3))
    y = transformer(x, params)[0].detach().requires_grad_(True)
    params.requires_grad_(True)
    leaves = [params, *transformer.parameters()]
    x_inv, inverse_logabsdet = transformer.inverse(y, params)
    inverse_grads = torch.autograd.grad(x_inv.sum(), [y, *leaves], retain_graph=True)
    (logabsdet_grad,) = torch.autograd.grad(inverse_logabsdet.sum(), y)

    x_fixed = x_inv.detach().requires_grad_(True)
    y_fwd, logabsdet = transformer(x_fixed, params)
    inverse_slope = torch.exp(-logabsdet).detach()
    forward_grads = torch.autograd.grad((-y_fwd * inverse_slope).sum(), leaves, retain_graph=True)
    (curvature,) = torch.autograd.grad(logabsdet.sum(), x_fixed)
    torch.testing.assert_close(inverse_grads[0], inverse_slope)
    for inverse_grad, forward_grad in zip(inverse_grads[1:], forward_grads):
        assert torch.isfinite(inverse_grad).all()
        torch.testing.assert_close(inverse_grad, forward_grad)
    torch.testing.assert_close(logabsdet_grad, -curvature * inverse_slope)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_forward_gradients_finite(name: str):
    transformer, x, params = setup(name, torch.float32)
    x = torch.cat([x, torch.zeros(1, x.shape[1])]).requires_grad_(True)  # x = 0 too: powers, kinks
    params = torch.cat([params, params[:1]]).requires_grad_(True)
    y, logabsdet = transformer(x, params)
    grads = torch.autograd.grad((y + logabsdet).sum(), [x, params, *transformer.parameters()])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("factory", [DeepSigmoidal, SumOfSquares, UnconstrainedMonotonic])
def test_zero_params_are_identity(factory: Callable[[], Univariate]):
    transformer = factory().double()
    x = torch.linspace(-4, 4, 24, dtype=torch.float64).view(6, 4)
    params = torch.zeros(6, 4, transformer.num_params, dtype=torch.float64)
    y, logabsdet = transformer(x, params)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(logabsdet, torch.zeros_like(x))


def test_sos_closed_form():
    """K = 1, r = 1: (a0 + a1 u)^2 integrates to c + a0^2 x + a0 a1 x^2 + a1^2 x^3 / 3."""
    transformer = SumOfSquares(polynomials=1, degree=1).double()
    assert transformer.num_params == 3
    c, a0, a1 = 0.5, 2.0, -0.7
    params = torch.tensor([c, a0 - 1.0, a1], dtype=torch.float64)  # a0 is offset by 1/sqrt(K) = 1
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    y, logabsdet = transformer(x, params.expand(13, 3))
    torch.testing.assert_close(y, c + a0**2 * x + a0 * a1 * x**2 + a1**2 * x**3 / 3)
    torch.testing.assert_close(logabsdet, torch.log((a0 + a1 * x) ** 2))


def test_dsf_single_unit_is_affine():
    """hidden = 1: w = 1 and logit(sigmoid(a x + b)) = a x + b, with a = softplus(raw + shift) + 1e-6."""
    transformer = DeepSigmoidal(hidden=1).double()
    assert transformer.num_params == 3
    a, b = 3.0, -0.4
    raw_a = math.log(math.expm1(a - 1e-6)) - math.log(math.expm1(1 - 1e-6))
    params = torch.tensor([raw_a, b, 0.8], dtype=torch.float64)
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    y, logabsdet = transformer(x, params.expand(17, 3))
    torch.testing.assert_close(y, a * x + b)
    torch.testing.assert_close(logabsdet, torch.full_like(x, math.log(a)))


def test_num_params():
    assert DeepSigmoidal().num_params == 48 and DeepSigmoidal(hidden=4, layers=3).num_params == 36
    assert SumOfSquares().num_params == 1 + 5 * 5 and SumOfSquares(3, 2).num_params == 10
    assert UnconstrainedMonotonic().num_params == 31


@pytest.mark.parametrize("steps", [1, 4, 7, 20])
def test_clenshaw_curtis_is_exact_for_polynomials(steps: int):
    nodes, weights = clenshaw_curtis(steps)
    assert nodes.shape == weights.shape == (steps + 1,)
    for degree in range(steps + 1):
        exact = (1 - (-1) ** (degree + 1)) / (degree + 1)
        torch.testing.assert_close((weights * nodes**degree).sum(), torch.tensor(exact, dtype=torch.float64),
                                   atol=1e-13, rtol=0)


def test_clenshaw_curtis_integrates_exp():
    nodes, weights = clenshaw_curtis(20)
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)[:, None]
    integral = x / 2 * (weights * torch.exp(x * (nodes + 1) / 2)).sum(-1, keepdim=True)
    torch.testing.assert_close(integral, torch.expm1(x), atol=1e-6, rtol=1e-6)


def test_umnn_integrates_its_integrand():
    """y - beta against a fine trapezoid rule over the integrand f = exp(log-derivative), to the
    accuracy of 21-node quadrature of a ReLU network (kinked, so not spectrally accurate)."""
    transformer, _, params = setup("umnn", torch.float64, shape=(2,))
    t = torch.linspace(0, 3, 4001, dtype=torch.float64)[:, None].expand(-1, 2)
    y, logabsdet = transformer(t, params.expand(4001, -1, -1))
    reference = torch.trapezoid(logabsdet.exp(), t, dim=0)
    torch.testing.assert_close(y[-1] - params[:, -1], reference, atol=1e-4, rtol=1e-4)


def test_bisection_expands_the_bracket():
    def cubic(x: torch.Tensor) -> torch.Tensor:
        return x**3 + x

    y = torch.tensor([-1e3, -1.0, 0.0, 0.3, 2.0, 1e6], dtype=torch.float64)
    x = bisection(cubic, y, lower=-0.5, upper=0.5)
    torch.testing.assert_close(cubic(x), y, atol=1e-9, rtol=1e-12)
    x32 = bisection(cubic, y.float(), tol=1e-6)
    torch.testing.assert_close(x32, x.float(), atol=1e-5, rtol=1e-6)


def test_invert_has_implicit_gradient():
    """x = y^(1/3) for f(x) = s x^3: dx/dy = 1 / (3 s x^2), dx/ds = -x^3 / (3 s x^2)."""
    s = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.5, 3.0, -7.0], dtype=torch.float64, requires_grad=True)
    x, logabsdet = invert(lambda v: (s * v**3, torch.log(3 * s * v**2)), y)
    expected = torch.sign(y) * (y.abs() / 2) ** (1 / 3)
    torch.testing.assert_close(x, expected.detach())
    dy, ds = torch.autograd.grad(x.sum(), [y, s])
    torch.testing.assert_close(dy, 1 / (3 * 2 * expected.detach() ** 2))
    torch.testing.assert_close(ds, (-expected**3 / (3 * 2 * expected**2)).sum().detach())
    torch.testing.assert_close(logabsdet, -torch.log(6 * expected**2).detach())
