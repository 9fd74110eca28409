"""The generator's exponential moving average (EMA), for every GAN: `model.ema_decay` (a decay per
generator step) or `model.ema_half_life_kimg` (a half-life in images), with a warm-up.

G_ema <- beta G_ema + (1 - beta) G after every generator step; eval and sample use G_ema's
weights where the checkpoint holds them (`eval.weights=raw`, `weights=raw`: the raw ones).
Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation": beta 0.999. Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for
GANs": a half-life of 10k images, beta = 0.5 ** (batch / (10 * 1000)) per step at the step's batch
size (their code's G_smoothing_kimg = 10). Brock, Donahue & Simonyan 2019, "Large Scale GAN Training
for High Fidelity Natural Image Synthesis": 0.9999. Yazici et al. 2019, "The Unusual Effectiveness
of Averaging in GAN Training", measure why.

Warm-up (`model.ema_warmup`, on by default): the t-th average uses min(beta, (1 + t) / (10 + t))
(TensorFlow's ExponentialMovingAverage with num_updates). It forgets the random initial weights
within the first few hundred steps, whatever the run's length, and leaves beta as configured from
about 9,000 updates at 0.999. Preferred over BigGAN-PyTorch's ema_start (G_ema pegged to G for the
first N iterations, then the full decay): that N must be picked per run length, and a run shorter
than ~1 / (1 - beta) steps after N still averages mostly early weights. `model.ema_warmup=false`
is the ProGAN/StyleGAN code's fixed beta from the start.

Why torch's `AveragedModel` (on the generator alone) and not Lightning 2.6's `EMAWeightAveraging`:
that callback (lightning/pytorch/callbacks/weight_averaging.py) averages the whole LightningModule
(the discriminator, BiGAN's encoder), updates once per step counted in `global_step` (here only the
discriminator's step is counted, so with n_critic = 2 or 5 it would average n_critic times per
generator step), puts the average into checkpoint["state_dict"] with the raw weights moved aside,
and copies the average into the live module when fit ends, before train saves its last.ckpt: that
checkpoint would hold averages as its raw weights, and a resume would not continue the raw run.
So GANModule owns a `GeneratorEMA` as the submodule `generator_ema`, built when fit sets up (after
any subclass has finished its generator), updated right after each generator step: its weights
and its update count are plain tensors in the checkpoint's state_dict beside the raw ones
(`generator_ema.module.*`, `generator_ema.n_averaged`), so a resume restores both exactly.
The first update copies G (AveragedModel's rule); the papers' code starts G_ema as a copy of G's
initial weights, one step earlier.

Buffers are copied from G at every update, not averaged (AveragedModel's use_buffers=False), as
StyleGAN's code (setup_as_moving_average_of with beta_nontrainable = 0) and StyleGAN2-ADA's (G_ema's
buffers copied from G): BatchNorm's running statistics, spectral norm's power-iteration vectors and
StyleGAN's tracked mean w are those of the raw G. BigGAN-PyTorch's ema instead lerps every
state_dict entry, buffers included, and can re-estimate BatchNorm statistics ("standing stats")
before sampling; averaging torch's spectral-norm u and v would leave them off unit length (a wrong
sigma in eval mode), and standing statistics are not done here.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gen_runner.errors import UserError

__all__ = ["EMASchedule", "GeneratorEMA", "ema_schedule", "swapped"]


@dataclass(frozen=True)
class EMASchedule:
    """The decay beta of each EMA update: `decay` per generator step, or the decay of a half-life of
    `half_life_kimg` thousand images at the step's batch size; warmed up as min(beta, (1+t)/(10+t))."""

    decay: float | None = None
    half_life_kimg: float | None = None
    warmup: bool = True

    def beta(self, update: int, batch_size: int) -> float:
        """The decay of the `update`-th average (1, 2, ...; the 0th copies G) after a step on `batch_size` images."""
        beta = self.decay if self.half_life_kimg is None else 0.5 ** (batch_size / (self.half_life_kimg * 1000))
        return min(beta, (1 + update) / (10 + update)) if self.warmup else beta


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ema_schedule(decay: float | None, half_life_kimg: float | None, warmup: bool) -> EMASchedule | None:
    """The schedule `model.ema_decay` / `model.ema_half_life_kimg` / `model.ema_warmup` ask for; None: no EMA."""
    if decay is not None and half_life_kimg is not None:
        raise UserError(f"model.ema_decay={decay} and model.ema_half_life_kimg={half_life_kimg}: pass one of them "
                        "(the other null)")
    if decay is not None and not (_number(decay) and 0 < decay < 1):
        raise UserError(f"model.ema_decay={decay}: pass a decay in (0, 1), e.g. 0.999, or null for no EMA")
    if half_life_kimg is not None and not (_number(half_life_kimg) and half_life_kimg > 0):
        raise UserError(f"model.ema_half_life_kimg={half_life_kimg}: pass a half-life > 0 in thousands of images, "
                        "e.g. 10, or null")
    if decay is None and half_life_kimg is None:
        return None
    return EMASchedule(decay, half_life_kimg, bool(warmup))


class GeneratorEMA(AveragedModel):
    """torch's AveragedModel of a generator: parameters averaged by `schedule` (torch's EMA lerp),
    buffers copied (use_buffers=False). Its copy takes no gradients."""

    def __init__(self, generator: nn.Module, schedule: EMASchedule):
        super().__init__(generator, use_buffers=False)
        self.module.requires_grad_(False)
        self.schedule = schedule

    @torch.no_grad()
    def update(self, generator: nn.Module, batch_size: int) -> None:
        """Take in `generator` after a step on `batch_size` images."""
        self.multi_avg_fn = get_ema_multi_avg_fn(self.schedule.beta(int(self.n_averaged), batch_size))
        self.update_parameters(generator)


@contextlib.contextmanager
def swapped(a: nn.Module, b: nn.Module):
    """Inside the block, `a` and `b` hold each other's parameters and buffers (same structure)."""
    left, right = a.state_dict(keep_vars=True), b.state_dict(keep_vars=True)
    if left.keys() != right.keys():
        raise RuntimeError("the generator's EMA copy has other tensors than the generator: build every layer of "
                           "the generator in its constructor")

    @torch.no_grad()
    def exchange():
        for name, x in left.items():
            y = right[name]
            kept = x.detach().clone()
            x.detach().copy_(y)
            y.detach().copy_(kept)

    exchange()
    try:
        yield
    finally:
        exchange()
