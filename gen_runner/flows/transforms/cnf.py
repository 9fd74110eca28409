"""A continuous normalizing flow block (Chen, Rubanova, Bettencourt & Duvenaud 2018, "Neural Ordinary
Differential Equations"; Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud 2019, "FFJORD: Free-form
Continuous Dynamics for Scalable Reversible Generative Models").

Data x = z(0) flows to z(T) by dz/dt = f(t, z), and by the instantaneous change of variables

    log p(x) = log p(z(T)) + int_0^T tr(df/dz(t)) dt,

so `forward` integrates (z, the trace integral) from 0 to T and returns the integral as the
log-det; `inverse` integrates from T back to 0 (its log-det is minus the integral). The ODE is
solved by torchdiffeq (`solver`, `atol`, `rtol`; `eval_atol`/`eval_rtol` out of training), by
backpropagation through the solver's steps or, with `adjoint=True`, by the adjoint method (a second
solve backward in time, constant memory). T = s^2 with s learnable when `train_T` (the authors' code).

The trace (FFJORD sec. 3): during training Hutchinson's estimator tr(J) = E[e^T J e], one noise draw
e per solve (`trace_estimator` "rademacher" or "gaussian"), from one vector-Jacobian product per
function evaluation; out of training (validation, eval) the exact trace, D vector-Jacobian products,
for data of at most `exact_max_dim` dimensions (FlowModule's eval sets it from
`eval.exact_logdet_max_dim`); `trace_estimator="exact"` always uses it.

Regularization (Finlay, Jacobsen, Nurbekyan & Oberman 2020, "How to train your neural ODE: the world
of Jacobian and kinetic regularization"), when `regularize` is set and training: the kinetic energy
int_0^T ||f||^2 / (2D) dt and the Jacobian's Frobenius norm int_0^T ||df/dz||_F^2 / D dt, integrated
as extra states of the forward solve (excluded from the step-size control, as in the authors' code),
||df/dz||_F^2 estimated by ||e^T df/dz||^2 with the trace's noise (exact with the exact trace).
Per-dimension means (and the kinetic half) as the authors' code normalizes them, so their weights
(0.01 each on MNIST) carry over; the paper writes the plain integrals.

Function evaluations: `nfe_forward` counts those of the last solve, `nfe_backward` those
differentiated since (the adjoint's backward solve, or the forward steps backpropagated through).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from gen_runner.errors import UserError
from gen_runner.flows.transforms.base import Transform

__all__ = ["CNF", "Dynamics", "SOLVERS", "TRACE_ESTIMATORS"]

TRACE_ESTIMATORS = ("rademacher", "gaussian", "exact")
SOLVERS = ("dopri5", "dopri8", "bosh3", "adaptive_heun")  # adaptive: atol/rtol decide the steps


class _CountBackward(torch.autograd.Function):
    """The identity, counting the times its gradient is taken (a function evaluation differentiated)."""

    @staticmethod
    def forward(ctx, x, counter):
        ctx.counter = counter
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.counter.backward_calls += 1
        return grad, None


class Dynamics(nn.Module):
    """The augmented dynamics of a CNF: (z, log-det, kinetic, Jacobian) -> their time derivatives.

    `noise`: Hutchinson's e for this solve, or None for the exact trace; `regularize`: whether the
    state carries the two regularization integrals. `calls` and `backward_calls` count evaluations."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.noise: torch.Tensor | None = None
        self.regularize = False
        self.calls = 0
        self.backward_calls = 0

    def divergence(self, dz: torch.Tensor, z: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(tr(df/dz), ||df/dz||_F^2) per example: exact by D vector-Jacobian products (the rows of
        the Jacobian) when `noise` is None, else Hutchinson's e^T J e and ||e^T J||^2."""
        batch = len(z)
        if self.noise is not None:
            vjp = torch.autograd.grad(dz, z, self.noise, create_graph=create_graph)[0].reshape(batch, -1)
            return (vjp * self.noise.reshape(batch, -1)).sum(1), vjp.pow(2).sum(1)
        flat = dz.reshape(batch, -1)
        trace, frobenius = dz.new_zeros(batch), dz.new_zeros(batch)
        for i in range(flat.shape[1]):
            row = torch.autograd.grad(flat[:, i].sum(), z, create_graph=create_graph, retain_graph=True)[0]
            row = row.reshape(batch, -1)
            trace = trace + row[:, i]
            frobenius = frobenius + row.pow(2).sum(1)
        return trace, frobenius

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        self.calls += 1
        z = state[0]
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():
            if not (differentiable and z.requires_grad):  # a fresh leaf to differentiate f by
                z = z.detach().requires_grad_(True)
            dz = self.net(t, z)
            trace, frobenius = self.divergence(dz, z, create_graph=differentiable)
        if not differentiable:
            dz, trace, frobenius = dz.detach(), trace.detach(), frobenius.detach()
        else:
            dz = _CountBackward.apply(dz, self)
        if not self.regularize:
            return dz, trace
        dim = dz[0].numel()
        return dz, trace, dz.pow(2).reshape(len(dz), -1).sum(1) / (2 * dim), frobenius / dim


class CNF(Transform):
    """One continuous normalizing flow block: dz/dt = `net`(t, z) over [0, T] (module docstring).

    `net(t, z)` returns a tensor of z's shape. `dim`: the number of dimensions of z (the exact trace
    takes that many vector-Jacobian products per evaluation)."""

    def __init__(self, net: nn.Module, dim: int, time_length: float = 0.5, train_T: bool = True,
                 solver: str = "dopri5", atol: float = 1e-5, rtol: float = 1e-5,
                 eval_atol: float = 1e-6, eval_rtol: float = 1e-6, trace_estimator: str = "gaussian",
                 adjoint: bool = False, exact_max_dim: int = 16):
        super().__init__()
        if trace_estimator not in TRACE_ESTIMATORS:
            raise UserError(f"trace_estimator={trace_estimator!r}: choose {', '.join(TRACE_ESTIMATORS)}")
        if solver not in SOLVERS:
            raise UserError(f"solver={solver!r}: choose an adaptive solver, {', '.join(SOLVERS)}")
        if time_length <= 0:
            raise UserError(f"time_length={time_length}: the flow's integration time must be positive")
        if min(atol, rtol, eval_atol, eval_rtol) <= 0:
            raise UserError(f"solver tolerances must be positive, got atol={atol}, rtol={rtol}, "
                             f"eval_atol={eval_atol}, eval_rtol={eval_rtol}")
        self.dynamics = Dynamics(net)
        self.dim = dim
        sqrt_end_time = torch.tensor(math.sqrt(time_length))
        if train_T:
            self.sqrt_end_time = nn.Parameter(sqrt_end_time)
        else:
            self.register_buffer("sqrt_end_time", sqrt_end_time)
        self.solver, self.atol, self.rtol, self.eval_atol, self.eval_rtol = solver, atol, rtol, eval_atol, eval_rtol
        self.trace_estimator, self.adjoint, self.exact_max_dim = trace_estimator, adjoint, exact_max_dim
        self.regularize = False
        self.regularization: torch.Tensor | None = None  # [kinetic, jacobian], batch means, of the last forward
        self.nfe_forward = 0

    @property
    def end_time(self) -> torch.Tensor:
        return self.sqrt_end_time**2

    @property
    def exact(self) -> bool:
        """Whether this solve takes the exact trace (module docstring)."""
        return self.trace_estimator == "exact" or (not self.training and self.dim <= self.exact_max_dim)

    @property
    def nfe_backward(self) -> int:
        return self.dynamics.backward_calls

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._solve(x, reverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._solve(y, reverse=True)

    def _noise(self, z: torch.Tensor) -> torch.Tensor | None:
        if self.exact:
            return None
        if self.trace_estimator == "rademacher":
            return torch.randint(0, 2, z.shape, device=z.device).to(z) * 2 - 1
        return torch.randn_like(z)

    def _solve(self, z: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        dynamics = self.dynamics
        dynamics.noise = self._noise(z)
        dynamics.regularize = self.regularize and self.training and not reverse
        dynamics.calls = dynamics.backward_calls = 0
        zero = z.new_zeros(len(z))
        state = (z, zero, zero, zero) if dynamics.regularize else (z, zero)
        end = self.end_time.to(z)
        times = torch.stack([end, end.new_zeros(())]) if reverse else torch.stack([end.new_zeros(()), end])
        atol, rtol = (self.atol, self.rtol) if self.training else (self.eval_atol, self.eval_rtol)
        # The regularization integrals ride along without controlling the step size (the authors' code).
        free = [1e20] * (len(state) - 2)
        options = dict(method=self.solver, atol=[atol, atol, *free], rtol=[rtol, rtol, *free])
        if self.adjoint:
            solution = odeint_adjoint(dynamics, state, times, adjoint_atol=atol, adjoint_rtol=rtol, **options)
        else:
            solution = odeint(dynamics, state, times, **options)
        self.nfe_forward = dynamics.calls
        final = [s[-1] for s in solution]
        if dynamics.regularize:
            self.regularization = torch.stack([final[2].mean(), final[3].mean()])
        return final[0], final[1]
