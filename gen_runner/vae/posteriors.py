"""A VAE's approximate posterior q(z | x): a diagonal Gaussian q_0 pushed through K flow steps,
every parameter computed by the encoder from x (amortised, as in both flow papers).

    z_0 = mu(x) + sigma(x) eps,  eps ~ N(0, I);   z_k = f_k(z_{k-1}; theta_k(x));
    log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det df_k / dz_{k-1}|.

- `diagonal`: q_0 alone (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"). The variance
  is a softplus of a linear map of the encoder's features h (van den Berg et al.'s code).
- `planar`: f(z) = z + u_hat h(w^T z + b), h = tanh (Rezende & Mohamed 2015, "Variational Inference
  with Normalizing Flows", eq. 10), log|det| = log|1 + u_hat^T h'(w^T z + b) w| (eq. 12), with the
  paper's appendix reparametrisation u_hat = u + (m(w^T u) - w^T u) w / ||w||^2,
  m(a) = -1 + softplus(a), so that w^T u_hat > -1 and f is invertible.
- `radial`: f(z) = z + beta h(alpha, r) (z - z0), h = 1 / (alpha + r), r = ||z - z0|| (eq. 14),
  det = (1 + beta h)^(d-1) (1 + beta h + beta h'(r) r); alpha = softplus(.) > 0 and
  beta = -alpha + softplus(.) >= -alpha (the appendix), so f is invertible.
- `sylvester_orthogonal`, `sylvester_householder`, `sylvester_triangular`: z' = z + Q R h(R~ Q^T z + b)
  (van den Berg, Hasenclever, Tomczak & Welling 2018, "Sylvester Normalizing Flows for Variational
  Inference"), Q [d, M] with orthonormal columns, R and R~ [M, M] upper triangular, h = tanh. By
  Sylvester's identity det = prod_i (1 + R~_ii R_ii h'(.)_i) (their theorem 2). The diagonals
  pass through tanh, so R~_ii R_ii > -1 = -1 / sup h' and f is invertible (their sec. 3);
  their code's layout: one amortised M x M matrix gives R's strict upper part and, transposed, R~'s.
  Q is amortised and orthogonalised by the paper's iteration Q <- Q (I + (I - Q^T Q) / 2) from
  Q / ||Q||_F until ||Q^T Q - I||_F <= 1e-5 (at most 100 steps, as their code) (O-SNF, M columns);
  or a product of H Householder reflections (H-SNF, M = d); or alternately the identity and the
  reversal permutation (T-SNF, M = d).
- `iaf`: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling 2016, "Improved Variational
  Inference with Inverse Autoregressive Flow": [m, s] = MADE(z, h) (gen_runner/nets/made.py, the
  encoder's features h as the MADE's context, connected to every hidden unit), sigma = sigmoid(s +
  forget_bias), z = sigma z + (1 - sigma) m (the numerically stable LSTM-type update of their
  eq. 14), log|det| = sum log sigma; the order reversed between steps. forget_bias = 1 and ELU
  units as van den Berg et al.'s IAF code (the paper: "+1 or +2").

Deviation: IAF's context is h itself, not a further linear map of it (the MADE's first layer is
already linear in h). Step functions take z of any leading shape [..., B, d] with parameters of
one example each [B, ...], so S posterior samples per example share one pass of the heads.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gen_runner.nets.made import MADE, autoregressive_order

__all__ = ["POSTERIORS", "Posterior", "make_flow", "planar", "planar_u_hat", "radial", "sylvester",
           "orthogonalize", "householder_product", "AmortisedFlow", "PlanarFlow", "RadialFlow", "SylvesterFlow",
           "IAFFlow"]

POSTERIORS = ("diagonal", "planar", "radial", "sylvester_orthogonal", "sylvester_householder",
              "sylvester_triangular", "iaf")
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# -- the steps, as functions of their parameters ------------------------------------------------------
def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1, keepdim=True)


def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u + (m(w^T u) - w^T u) w / ||w||^2, m(a) = -1 + softplus(a): then w^T u_hat = m(w^T u) > -1."""
    wu = _dot(w, u)
    return u + (F.softplus(wu) - 1 - wu) * w / _dot(w, w)


def planar(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = z + u_hat tanh(w^T z + b) and log|det df/dz| = log(1 + tanh'(.) w^T u_hat); b [B, 1]."""
    u = planar_u_hat(u, w)
    a = torch.tanh(_dot(w, z) + b)
    return z + u * a, torch.log1p((1 - a ** 2) * _dot(w, u)).squeeze(-1)


def radial(z: torch.Tensor, z0: torch.Tensor, alpha_raw: torch.Tensor,
           beta_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = z + beta (z - z0) / (alpha + r), alpha = softplus(alpha_raw), beta = -alpha + softplus(beta_raw)."""
    alpha = F.softplus(alpha_raw)
    beta = F.softplus(beta_raw) - alpha
    diff = z - z0
    r = diff.norm(dim=-1, keepdim=True)
    h = 1 / (alpha + r)
    log_det = (z.shape[-1] - 1) * torch.log1p(beta * h) + torch.log1p(beta * h - beta * r * h ** 2)
    return z + beta * h * diff, log_det.squeeze(-1)


def sylvester(z: torch.Tensor, q: torch.Tensor, r: torch.Tensor, r_tilde: torch.Tensor,
              b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z' = z + Q R tanh(R~ Q^T z + b) and log|det| = sum_i log(1 + R~_ii R_ii tanh'(.)_i) (Sylvester's
    identity); q [B, d, M], r and r_tilde [B, M, M] upper triangular, b [B, M]."""
    a = torch.tanh((z.unsqueeze(-2) @ q @ r_tilde.mT).squeeze(-2) + b)  # [..., B, M]
    out = z + (a.unsqueeze(-2) @ r.mT @ q.mT).squeeze(-2)
    diagonal = r.diagonal(dim1=-2, dim2=-1) * r_tilde.diagonal(dim1=-2, dim2=-1)
    return out, torch.log1p(diagonal * (1 - a ** 2)).sum(-1)


def orthogonalize(q: torch.Tensor, tol: float = 1e-5, max_steps: int = 100) -> torch.Tensor:
    """[B, d, M] -> matrices with orthonormal columns: Q / ||Q||_F, then Q <- Q (I + (I - Q^T Q) / 2)
    until every ||Q^T Q - I||_F <= tol or after max_steps (van den Berg et al. 2018, sec. 4.1)."""
    q = q / q.flatten(-2).norm(dim=-1)[..., None, None]
    eye = torch.eye(q.shape[-1], dtype=q.dtype, device=q.device)
    for _ in range(max_steps):
        q = q @ (1.5 * eye - 0.5 * q.mT @ q)
        if (q.mT @ q - eye).flatten(-2).norm(dim=-1).max() <= tol:
            break
    return q


def householder_product(v: torch.Tensor) -> torch.Tensor:
    """[B, H, d] -> Q = H_H ... H_1 [B, d, d], H_j = I - 2 v_j v_j^T / ||v_j||^2."""
    v = v / v.norm(dim=-1, keepdim=True)
    q = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device).expand(len(v), -1, -1)
    for j in range(v.shape[1]):
        vj = v[:, j, :, None]
        q = q - 2 * vj @ (vj.mT @ q)
    return q


# -- the flows, their parameters amortised ---------------------------------------------------------------
class AmortisedFlow(nn.Module):
    """K steps whose parameters one linear head computes from the encoder's features h [B, F]
    (`params_per_step` each); subclasses implement `step(z, params [B, P], k)`."""

    def __init__(self, features: int, dim: int, length: int, params_per_step: int):
        super().__init__()
        self.dim, self.length = dim, length
        self.head = nn.Linear(features, length * params_per_step)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [..., B, d] -> (z_K, sum_k log|det|) [..., B]."""
        params = self.head(h).view(len(h), self.length, -1)
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for k in range(self.length):
            z, step_log_det = self.step(z, params[:, k], k)
            log_det = log_det + step_log_det
        return z, log_det

    def step(self, z: torch.Tensor, params: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class PlanarFlow(AmortisedFlow):
    def __init__(self, features: int, dim: int, length: int):
        super().__init__(features, dim, length, 2 * dim + 1)

    def step(self, z, params, k):
        u, w, b = params.split([self.dim, self.dim, 1], -1)
        return planar(z, u, w, b)


class RadialFlow(AmortisedFlow):
    def __init__(self, features: int, dim: int, length: int):
        super().__init__(features, dim, length, dim + 2)

    def step(self, z, params, k):
        z0, alpha, beta = params.split([self.dim, 1, 1], -1)
        return radial(z, z0, alpha, beta)


class SylvesterFlow(AmortisedFlow):
    """`q`: "orthogonal" (M = `num_ortho_vecs` columns), "householder" (`num_householder`
    reflections, M = d) or "triangular" (Q = I at even steps, the reversal at odd ones, M = d)."""

    def __init__(self, features: int, dim: int, length: int, q: str, num_ortho_vecs: int = 8,
                 num_householder: int = 8):
        m = num_ortho_vecs if q == "orthogonal" else dim
        q_params = {"orthogonal": dim * m, "householder": num_householder * dim, "triangular": 0}[q]
        super().__init__(features, dim, length, m * m + 3 * m + q_params)
        self.q, self.m, self.num_householder = q, m, num_householder
        self.tol = 1e-5  # orthogonalisation: ||Q^T Q - I||_F at which the iteration stops
        self.register_buffer("upper", torch.ones(m, m).triu(1))
        self.register_buffer("reversal", torch.eye(dim).flip(0))

    def step(self, z, params, k):
        m = self.m
        full, diag, diag_tilde, b, q = params.split([m * m, m, m, m, params.shape[-1] - m * m - 3 * m], -1)
        full = full.view(-1, m, m)
        r = full * self.upper + torch.diag_embed(torch.tanh(diag))
        r_tilde = full.mT * self.upper + torch.diag_embed(torch.tanh(diag_tilde))
        if self.q == "orthogonal":
            q = orthogonalize(q.view(-1, self.dim, m), self.tol)
        elif self.q == "householder":
            q = householder_product(q.view(-1, self.num_householder, self.dim))
        else:
            q = (self.reversal if k % 2 else torch.eye(self.dim, device=z.device, dtype=z.dtype))[None]
        return sylvester(z, q, r, r_tilde, b)


class IAFFlow(nn.Module):
    """K IAF steps, each a MADE of `hidden` ELU layers on (z, h), orders alternating (reversed every other step)."""

    def __init__(self, features: int, dim: int, length: int, hidden=(128, 128), forget_bias: float = 1.0):
        super().__init__()
        self.forget_bias = forget_bias
        self.mades = nn.ModuleList(MADE(autoregressive_order(dim, "reverse", k), list(hidden), 2, features,
                                        activation="elu", zero_last=False) for k in range(length))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context = h.expand(*z.shape[:-1], h.shape[-1])
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for made in self.mades:
            m, s = made(z, context).chunk(2, -1)
            gate = torch.sigmoid(s + self.forget_bias)
            z = gate * z + (1 - gate) * m
            log_det = log_det + F.logsigmoid(s + self.forget_bias).sum(-1)
        return z, log_det


def make_flow(posterior: str, features: int, dim: int, length: int, num_ortho_vecs: int = 8,
              num_householder: int = 8, iaf_hidden=(128, 128)) -> nn.Module | None:
    """The flow of a `posterior` option (None for "diagonal")."""
    if posterior not in POSTERIORS:
        raise ValueError(f"model.posterior={posterior!r}: choose one of {', '.join(POSTERIORS)}")
    if posterior == "diagonal":
        return None
    if length < 1:
        raise ValueError(f"model.flow_length={length}: a {posterior} posterior takes at least 1 step")
    if posterior == "sylvester_orthogonal" and not 1 <= num_ortho_vecs <= dim:
        raise ValueError(f"model.num_ortho_vecs={num_ortho_vecs}: pass 1 to model.latent_dim={dim} columns")
    if posterior == "sylvester_householder" and num_householder < 1:
        raise ValueError(f"model.num_householder={num_householder}: pass at least 1 reflection")
    if posterior == "iaf":
        return IAFFlow(features, dim, length, iaf_hidden)
    if posterior.startswith("sylvester_"):
        return SylvesterFlow(features, dim, length, posterior.removeprefix("sylvester_"), num_ortho_vecs,
                             num_householder)
    return {"planar": PlanarFlow, "radial": RadialFlow}[posterior](features, dim, length)


class Posterior(nn.Module):
    """q(z | x) from the encoder's features h [B, F]: N(mean(h), diag softplus(v(h))) and a `flow` (or None)."""

    def __init__(self, features: int, dim: int, flow: nn.Module | None = None):
        super().__init__()
        self.mean, self.var = nn.Linear(features, dim), nn.Linear(features, dim)
        self.flow = flow

    def forward(self, h: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """eps [..., B, d] standard normal -> (z_K [..., B, d], log q(z_K | x) [..., B])."""
        var = F.softplus(self.var(h))
        z = self.mean(h) + var.sqrt() * eps
        log_q = -(0.5 * eps ** 2 + HALF_LOG_2PI + 0.5 * var.log()).sum(-1)
        if self.flow is None:
            return z, log_q
        z, log_det = self.flow(z, h)
        return z, log_q - log_det
