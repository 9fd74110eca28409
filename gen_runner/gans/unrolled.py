"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017, "Unrolled Generative Adversarial Networks").

The generator is trained against the discriminator it would face `unroll_steps` = K steps later:
theta_D^0 is D's current parameters, theta_D^{k+1} one step of D's own optimizer on its loss at
theta_D^k, and the generator minimises the game's value at theta_D^K, f_K = -d_loss(theta_D^K)
(eq. 11; for the standard objective E_x log D(x) + E_z log(1 - D(G(z))), the minimax game the
paper plays), whose real-data term also depends on G through the unrolling (default K = 5; the
paper uses 5 and 10; K = 0 is the plain minimax GAN). With `second_order` (default) the gradient flows
through the unrolled steps too (theta_D^K depends on G through the fake batch); without it
theta_D^K is a constant, the paper's cheaper surrogate that drops the second-order terms. The
discriminator itself still takes one ordinary step per batch (the base class's): the unrolling
works on copies and leaves D's parameters, buffers and optimizer state alone.

As in the authors' code, every unrolled step sees the same real and fake batch, and Adam is
unrolled from the optimizer's current moments and step count (zeros before its first step), exactly
as torch.optim.Adam steps (L2 or decoupled weight decay; no amsgrad), except that the derivative of
sqrt at a zero second moment (a dead unit) is taken as 0, not infinite, which would turn G's
gradient into NaN. Any other optimizer is unrolled as plain SGD with its learning rate. The
unrolled steps use the objective alone: D's regularizers, weight and gradient clipping apply to its
real step only; dropout in D draws fresh masks each step.
"""
from __future__ import annotations

import math

import torch
from torch.func import functional_call

from gen_runner.gans.module import GANBatch, GANModule, Losses

__all__ = ["UnrolledGANModule"]


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt(v) with derivative 0 (not infinite) where v == 0, e.g. a dead unit's second moment."""
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, 1).sqrt(), 0)


def _adam_step(p: torch.Tensor, g: torch.Tensor, moments: tuple, hp: dict) -> tuple[torch.Tensor, tuple]:
    """torch.optim.Adam's update of one tensor, out of place: the new value and (step, m, v)."""
    step, m, v = moments
    step += 1
    (beta1, beta2), lr, wd = hp["betas"], hp["lr"], hp["weight_decay"]
    if hp.get("decoupled_weight_decay"):  # AdamW
        p = p * (1 - lr * wd)
    elif wd:
        g = g + wd * p
    m, v = m.lerp(g, 1 - beta1), v * beta2 + (1 - beta2) * g * g
    denom = _sqrt(v) / math.sqrt(1 - beta2**step) + hp["eps"]
    return p - lr / (1 - beta1**step) * m / denom, (step, m, v)


class UnrolledGANModule(GANModule):
    def __init__(self, *args, unroll_steps: int = 5, second_order: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if unroll_steps < 0:
            raise ValueError(f"model.unroll_steps={unroll_steps}: unroll zero or more steps")
        self.unroll_steps, self.second_order = unroll_steps, second_order

    def unrolled_state(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[dict, dict]:
        """D's (parameters, buffers) after K steps of its optimizer from its current parameters and
        state, as `functional_call` takes them; differentiable in `fake` when `second_order`."""
        optimizer = self.optimizers(use_pl_optimizer=False)[1]
        adam = isinstance(optimizer, torch.optim.Adam)
        if adam and any(g["amsgrad"] or g["maximize"] for g in optimizer.param_groups):
            raise ValueError("model.unroll_steps: unrolling supports Adam without amsgrad or maximize")
        named = dict(self.discriminator.named_parameters())
        hyper = {p: g for g in optimizer.param_groups for p in g["params"]}
        hyper = {n: hyper[p] for n, p in named.items()}
        moments = {}
        for n, p in named.items():
            s = optimizer.state.get(p, {})
            moments[n] = (float(s.get("step", 0)), s.get("exp_avg", torch.zeros_like(p)),
                          s.get("exp_avg_sq", torch.zeros_like(p)))
        params = {n: p.detach().requires_grad_() for n, p in named.items()}
        buffers = {n: b.clone() for n, b in self.discriminator.named_buffers()}  # BatchNorm, spectral norm
        real, fake = self.packed(real), self.packed(fake if self.second_order else fake.detach())

        for _ in range(self.unroll_steps):
            logits = [functional_call(self.discriminator, (params, buffers), (x,)) for x in (real, fake)]
            grads = torch.autograd.grad(self.objective.d_loss(*logits), list(params.values()),
                                        create_graph=self.second_order)
            for (n, p), g in zip(list(params.items()), grads):
                if adam:
                    p, moments[n] = _adam_step(p, g, moments[n], hyper[n])
                else:
                    p = p - hyper[n]["lr"] * g
                params[n] = p if self.second_order else p.detach().requires_grad_()
        return params, buffers

    def generator_loss(self, batch: GANBatch) -> Losses:
        """f_K = -d_loss at D's unrolled parameters, plus the generator's regularizers (from the
        base method, whose g_loss against the current D is replaced)."""
        state = self.unrolled_state(batch.real, batch.fake)
        real_logits, fake_logits = (functional_call(self.discriminator, state, (self.packed(x),))
                                    for x in (batch.real, batch.fake))
        losses = super().generator_loss(batch)
        losses.terms["train/g_loss"] = -self.objective.d_loss(real_logits, fake_logits)
        return losses
