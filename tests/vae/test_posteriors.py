"""The VAE posteriors' flows (gen_runner/vae/posteriors.py): invertibility constraints, log-determinants
against dense autograd Jacobians, orthogonality, autoregressive structure."""
from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from gen_runner.vae.posteriors import (POSTERIORS, IAFFlow, Posterior, make_flow, householder_product,
                                       orthogonalize, planar, planar_u_hat, radial, sylvester)


@pytest.fixture(autouse=True)
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def dense_log_det(f, z: torch.Tensor) -> torch.Tensor:
    """log|det df/dz| per example by a dense autograd Jacobian (f maps [B, d] -> [B, d] row-wise)."""
    return torch.stack([torch.linalg.slogdet(jacobian(lambda v: f(v[None])[0][0], zi))[1] for zi in z])


def test_planar_u_hat_keeps_w_dot_u_above_minus_one_for_any_raw_parameters():
    """Over raw w^T u from -30 to 30 and norms up to ~100 (below -37, softplus(w^T u) underflows in
    float64 and w^T u_hat rounds to -1: the bound holds in exact arithmetic only)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2000, 5, generator=g) * torch.logspace(-2, 1, 2000)[:, None]
    u = torch.randn(2000, 5, generator=g) * 10
    u = u + (torch.linspace(-30, 30, 2000) - (w * u).sum(-1))[:, None] * w / (w * w).sum(-1, keepdim=True)
    assert torch.allclose((w * u).sum(-1), torch.linspace(-30, 30, 2000)) and ((w * u).sum(-1) < -1).sum() > 900
    assert ((w * planar_u_hat(u, w)).sum(-1) > -1).all()


def planar_inverse(y, u, w, b, iters: int = 200):
    """Invert f(z) = z + u_hat tanh(w^T z + b) by bisection on the 1-D equation of a = w^T z + b:
    w^T y + b = a + w^T u_hat tanh(a), increasing in a since w^T u_hat > -1; then z = y - u_hat tanh(a)."""
    u_hat = planar_u_hat(u, w)
    target, wu = (w * y).sum(-1) + b[:, 0], (w * u_hat).sum(-1)
    lo, hi = target - wu.abs() - 1, target + wu.abs() + 1
    for _ in range(iters):
        mid = (lo + hi) / 2
        low = mid + wu * torch.tanh(mid) < target
        lo, hi = torch.where(low, mid, lo), torch.where(low, hi, mid)
    return y - u_hat * torch.tanh((lo + hi) / 2)[:, None]


def test_planar_inverts_by_root_finding_and_its_log_det_matches_autograd():
    g = torch.Generator().manual_seed(1)
    z, u, w = (torch.randn(6, 4, generator=g) for _ in range(3))
    b = torch.randn(6, 1, generator=g)
    u = u - 3 * w  # raw w^T u < -1 for most rows
    y, log_det = planar(z, u, w, b)
    assert torch.allclose(planar_inverse(y, u, w, b), z, atol=1e-9)
    rows = [planar(zi[None], u[i:i + 1], w[i:i + 1], b[i:i + 1])[1] for i, zi in enumerate(z)]
    expected = torch.stack([torch.linalg.slogdet(jacobian(lambda v: planar(v[None], u[i:i + 1], w[i:i + 1],
                                                                           b[i:i + 1])[0][0], z[i]))[1]
                            for i in range(len(z))])
    assert torch.allclose(log_det, expected, atol=1e-9) and torch.allclose(torch.cat(rows), log_det)


def test_radial_log_det_matches_autograd_and_beta_stays_above_minus_alpha():
    g = torch.Generator().manual_seed(2)
    z, z0 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    alpha, beta = torch.randn(5, 1, generator=g), torch.randn(5, 1, generator=g) - 5  # beta -> near -alpha
    _, log_det = radial(z, z0, alpha, beta)
    expected = torch.stack([torch.linalg.slogdet(jacobian(
        lambda v: radial(v[None], z0[i:i + 1], alpha[i:i + 1], beta[i:i + 1])[0][0], z[i]))[1] for i in range(5)])
    assert torch.allclose(log_det, expected, atol=1e-9) and log_det.isfinite().all()


def test_orthogonalization_converges_to_orthonormal_columns():
    q = orthogonalize(torch.randn(7, 6, 4, generator=torch.Generator().manual_seed(3)))
    assert torch.allclose(q.mT @ q, torch.eye(4).expand(7, 4, 4), atol=1e-5)
    h = householder_product(torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(4)))
    assert torch.allclose(h.mT @ h, torch.eye(6).expand(3, 6, 6), atol=1e-10)


@pytest.mark.parametrize("posterior", ["sylvester_orthogonal", "sylvester_householder", "sylvester_triangular",
                                       "planar", "radial", "iaf"])
def test_each_amortised_flow_log_det_matches_a_dense_slogdet(posterior):
    """The whole K-step flow, its parameters from the encoder's features h, against autograd."""
    torch.manual_seed(5)
    dim, features = 4, 6
    flow = make_flow(posterior, features, dim, length=3, num_ortho_vecs=3, num_householder=2, iaf_hidden=(12,))
    if posterior.startswith("sylvester"):
        assert flow.m == (3 if posterior.endswith("orthogonal") else dim)
    h, z = torch.randn(5, features), torch.randn(5, dim)
    if posterior == "sylvester_orthogonal":  # Sylvester's identity needs Q^T Q = I: as exact as float64 gets
        default = flow(z, h)[1]
        flow.tol = 1e-13
    _, log_det = flow(z, h)
    expected = torch.stack([torch.linalg.slogdet(jacobian(lambda v: flow(v[None], h[i:i + 1])[0][0], z[i]))[1]
                            for i in range(len(z))])
    assert torch.allclose(log_det, expected, atol=1e-7)
    if posterior == "sylvester_orthogonal":  # the default tolerance (1e-5) costs about as much
        assert torch.allclose(default, expected, atol=1e-4)


def test_sylvester_det_by_sylvesters_identity_equals_the_dense_one_with_random_triangles():
    g = torch.Generator().manual_seed(6)
    d, m = 5, 3
    q = orthogonalize(torch.randn(2, d, m, generator=g))
    r = torch.randn(2, m, m, generator=g).triu(1) + torch.diag_embed(torch.tanh(torch.randn(2, m, generator=g)))
    rt = torch.randn(2, m, m, generator=g).triu(1) + torch.diag_embed(torch.tanh(torch.randn(2, m, generator=g)))
    z, b = torch.randn(2, d, generator=g), torch.randn(2, m, generator=g)
    _, log_det = sylvester(z, q, r, rt, b)
    dense = [torch.linalg.slogdet(torch.eye(d) + q[i] @ r[i] @ torch.diag(1 - torch.tanh(rt[i] @ q[i].T @ z[i] + b[i])
                                                                          ** 2) @ rt[i] @ q[i].T)[1] for i in range(2)]
    assert torch.allclose(log_det, torch.stack(dense), atol=1e-10)


def test_iaf_steps_are_autoregressive_with_reversed_orders():
    """dz_K/dz_0 of one step is triangular in its order; consecutive steps use opposite orders."""
    torch.manual_seed(7)
    flow = IAFFlow(features=3, dim=4, length=2, hidden=(16,))
    h = torch.randn(1, 3)
    one = IAFFlow(3, 4, 1, (16,))
    one.mades[0] = flow.mades[0]
    jac = jacobian(lambda v: one(v[None], h)[0][0], torch.randn(4))
    assert torch.equal(jac.triu(1) != 0, torch.zeros(4, 4, dtype=torch.bool))  # z_i depends on z_{<=i}
    assert (jac.diagonal() != 0).all()
    assert flow.mades[0].degrees.tolist() == [1, 2, 3, 4] and flow.mades[1].degrees.tolist() == [4, 3, 2, 1]


def test_the_posterior_log_density_is_the_base_minus_the_flow_log_det_and_broadcasts_over_samples():
    torch.manual_seed(8)
    post = Posterior(6, 3, make_flow("planar", 6, 3, 2))
    h, eps = torch.randn(4, 6), torch.randn(5, 4, 3)  # 5 samples of each of 4 examples
    z, log_q = post(h, eps)
    assert z.shape == (5, 4, 3) and log_q.shape == (5, 4)
    z1, log_q1 = post(h, eps[2])
    assert torch.allclose(z1, z[2]) and torch.allclose(log_q1, log_q[2])


def test_bad_options_fail_in_one_line():
    with pytest.raises(ValueError, match="model.posterior='nope': choose one of diagonal"):
        make_flow("nope", 4, 2, 1)
    with pytest.raises(ValueError, match="model.flow_length=0"):
        make_flow("planar", 4, 2, 0)
    with pytest.raises(ValueError, match="model.num_ortho_vecs=5"):
        make_flow("sylvester_orthogonal", 4, 2, 1, num_ortho_vecs=5)
    assert make_flow("diagonal", 4, 2, 0) is None and len(POSTERIORS) == 7
