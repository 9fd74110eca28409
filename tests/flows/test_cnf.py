"""FFJORD (gen_runner/flows/ffjord.py) and its CNF block (flows/transforms/cnf.py): the exact-trace
density integrates to 1, the round trip inverts, Hutchinson's estimate is unbiased, the
regularizers against hand values, the adjoint's gradients against backpropagation, NFE counted,
and train -> eval -> sample through the CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import run_cli
from torch import nn

from gen_runner.errors import UserError
from gen_runner.flows.ffjord import ffjord_flow
from gen_runner.flows.transforms.cnf import CNF, Dynamics
from gen_runner.nets.odenet import ODENet

TIGHT = dict(atol=1e-9, rtol=1e-9, eval_atol=1e-9, eval_rtol=1e-9)


def strong_net(shape, hidden=(16, 16), layer="concatsquash", scale=3.0) -> ODENet:
    """A random ODE net whose field moves points far (weights scaled up), so the flow is not near the identity."""
    net = ODENet(shape, hidden, "tanh", layer)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net.double()


class Linear(nn.Module):
    """f(t, z) = a * z, elementwise: z(t) = z(0) exp(a t), tr = sum(a), ||df/dz||_F^2 = sum(a^2)."""

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.register_buffer("a", a)

    def forward(self, t, z):
        return z * self.a


def test_exact_trace_density_integrates_to_one():
    """Two stacked blocks of a random field (weights scaled up: log-densities up to 18 nats from the
    base's), the exact trace at tolerance 1e-8 (float64): the density sums to 1 within 1e-4 on a
    100 x 100 grid over [-8, 8]^2."""
    torch.manual_seed(0)
    tight = {key: 1e-8 for key in TIGHT}
    flow = ffjord_flow((2,), num_blocks=2, vector=dict(hidden=[16, 16]), cnf=dict(time_length=1.0, **tight)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(1.3)
    flow.eval()
    assert all(b.exact for b in flow.transform.transforms)
    n, high = 100, 8.0
    step = 2 * high / n
    centres = -high + step * (torch.arange(n, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        log_prob = flow.log_prob(grid)
        base = flow.base.log_prob(grid)
    assert (log_prob - base).abs().max() > 10  # far from the base density
    mass = log_prob.exp().sum().item() * step**2
    assert math.isclose(mass, 1.0, abs_tol=1e-4), mass


def test_round_trip_inverts_and_log_dets_negate():
    torch.manual_seed(0)
    cnf = CNF(strong_net((2,)), 2, time_length=1.0, **TIGHT).double().eval()
    x = torch.randn(6, 2, dtype=torch.float64)
    with torch.no_grad():
        z, logdet = cnf(x)
        x_again, inverse_logdet = cnf.inverse(z)
    assert (z - x).abs().max() > 0.1
    torch.testing.assert_close(x_again, x, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(inverse_logdet, -logdet, atol=1e-6, rtol=1e-6)


def test_multiscale_image_flow_round_trip():
    """The ODENVP layout on 8x8 images (conv "concat" ODE nets): logit, blocks, squeeze, blocks,
    split, blocks; exact traces so that both directions estimate nothing."""
    torch.manual_seed(0)
    tolerances = {key: 1e-7 for key in TIGHT}
    flow = ffjord_flow((1, 8, 8), image=dict(hidden=[4]), cnf=dict(trace_estimator="exact", **tolerances))
    flow = flow.double().eval()
    assert len([m for m in flow.modules() if isinstance(m, CNF)]) == 3  # 2 scales: before and after a squeeze, then 1
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64) * 0.9 + 0.05
    with torch.no_grad():
        z, logdet = flow(x)
        x_again, inverse_logdet = flow.inverse(z)
    assert z.shape == (3, 64)
    torch.testing.assert_close(x_again, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inverse_logdet, -logdet, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("estimator", ["rademacher", "gaussian"])
def test_hutchinson_estimate_is_unbiased(estimator):
    """One point, 20,000 noise draws (a batch of copies, one draw each): the mean estimate of
    tr(df/dz) is within 4 standard errors of the exact trace, in dimension 5."""
    torch.manual_seed(0)
    dynamics = Dynamics(strong_net((5,)))
    z = torch.randn(1, 5, dtype=torch.float64).expand(20_000, 5)
    t = torch.tensor(0.3, dtype=torch.float64)
    exact = dynamics(t, (z[:1], z.new_zeros(1)))[1]
    cnf = CNF(dynamics.net, 5, trace_estimator=estimator)
    dynamics.noise = cnf._noise(z)
    estimates = dynamics(t, (z, z.new_zeros(len(z))))[1]
    error = (estimates.mean() - exact).abs().item()
    assert error < 4 * estimates.std().item() / math.sqrt(len(z)), (error, exact.item())
    assert estimates.std() > 0  # a stochastic estimate


def test_regularizers_zero_for_a_zero_field_and_hand_values_for_a_linear_one():
    """f = a * z (elementwise), T = 0.7: z(T) = z exp(aT), log-det T sum(a), kinetic
    int ||f||^2/(2D) dt = sum_i a_i z_i^2 (exp(2 a_i T) - 1) / (4D), Jacobian T sum(a^2) / D
    (Rademacher noise: e_i^2 = 1, so its estimate is exact here); both 0 for f = 0."""
    a = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    T, D = 0.7, 3
    for field, kinetic, jacobian in [
        (torch.zeros(3, dtype=torch.float64), 0.0, 0.0),
        (a, (a * x**2 * torch.expm1(2 * a * T)).sum(1).mean().item() / (4 * D), T * (a**2).sum().item() / D),
    ]:
        cnf = CNF(Linear(field), D, time_length=T, train_T=False, trace_estimator="rademacher", **TIGHT)
        cnf.regularize = True
        z, logdet = cnf(x)
        torch.testing.assert_close(z, x * torch.exp(field * T))
        torch.testing.assert_close(logdet, torch.full((4,), T * field.sum().item(), dtype=torch.float64))
        torch.testing.assert_close(cnf.regularization, torch.tensor([kinetic, jacobian], dtype=torch.float64))


def test_adjoint_gradients_match_backpropagation_and_nfe_is_counted():
    torch.manual_seed(0)
    net = strong_net((2,), hidden=(8,), scale=1.5)
    x = torch.randn(16, 2, dtype=torch.float64)
    grads, nfe = [], []
    for adjoint in (False, True):
        cnf = CNF(net, 2, trace_estimator="exact", adjoint=adjoint, atol=1e-8, rtol=1e-8)
        cnf.zero_grad()
        z, logdet = cnf(x)
        (0.5 * z.pow(2).sum(1) - logdet).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in cnf.parameters()]))
        nfe.append((cnf.nfe_forward, cnf.nfe_backward))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)
    assert all(f > 0 and b > 0 for f, b in nfe), nfe
    assert nfe[0][1] <= nfe[0][0]  # backpropagation differentiates forward evaluations only


@pytest.mark.parametrize("options, message", [
    (dict(trace_estimator="hutch"), "choose rademacher, gaussian, exact"),
    (dict(solver="rk4"), "choose an adaptive solver"),
    (dict(atol=0.0), "tolerances must be positive"),
])
def test_bad_cnf_options_say_what_to_pass(options, message):
    with pytest.raises(UserError, match=message):
        ffjord_flow((2,), cnf=options)


def test_bad_architecture_options_say_what_to_pass():
    with pytest.raises(UserError, match="choose multiscale or flatten"):
        ffjord_flow((1, 8, 8), image=dict(layout="pyramid"))
    with pytest.raises(UserError, match="takes 1 to 2 scales"):
        ffjord_flow((1, 8, 8), image=dict(num_scales=3))
    with pytest.raises(UserError, match="activation 'gelu'"):
        ffjord_flow((2,), vector=dict(activation="gelu"))


SMALL = ["model.vector.hidden=[8,8]", "model.image.hidden=[4]", "trainer.max_steps=2", "data.batch_size=250",
         "callbacks=minimal", "logger=csv", "trainer.enable_model_summary=false"]


@pytest.mark.parametrize("data", ["moons", pytest.param("digits", marks=pytest.mark.slow)])
def test_cli_trains_logs_nfe_evaluates_and_samples(tmp_path, data):
    run_cli("train", "model=ffjord", f"data={data}", "model.kinetic_weight=0.01", "model.jacobian_weight=0.01",
            *SMALL, cwd=tmp_path)
    run = next(tmp_path.glob("outputs/train/*/*"))
    logged = json.loads((run / "metrics.json").read_text())
    assert logged["train/nfe_forward"] > 0 and logged["train/nfe_backward"] > 0
    assert logged["train/kinetic"] >= 0 and logged["train/jacobian"] >= 0
    ckpt = run / "checkpoints/last.ckpt"
    run_cli("eval", f"ckpt_path={ckpt}", "eval.batch_size=200", cwd=tmp_path)
    metrics = json.loads(next(tmp_path.glob("outputs/eval/*/*/metrics.json")).read_text())
    assert math.isfinite(metrics["nll"]) and (data == "digits") == ("bpd" in metrics)
    # 2-D points take the exact trace at eval (eval.exact_logdet_max_dim: 16); digits' 64 dimensions do not
    assert metrics["protocol"]["trace"].startswith("exact" if data == "moons" else "Hutchinson")
    run_cli("sample", f"ckpt_path={ckpt}", "num_samples=8", cwd=tmp_path)
    x = torch.load(next(tmp_path.glob("outputs/sample/*/*/samples/samples.pt")), weights_only=True)
    assert x.shape[0] == 8 and torch.isfinite(x).all()
