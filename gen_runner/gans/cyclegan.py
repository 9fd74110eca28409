"""CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks").

Two generators, G: A -> B and F: B -> A (ResNet generators, gen_runner/nets/resnet_generator.py),
and two discriminators, D_B judging B images and D_A judging A images (70x70 PatchGANs,
gen_runner/nets/patchgan.py, unconditional, instance norm), trained on unpaired batches (a, b):

    G, F minimise  L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + lambda_idt L_idt
    L_GAN(G, D_B) = E[(D_B(G(a)) - 1)^2]                          (LSGAN, sec. 4: least squares)
    L_cyc = E[|F(G(a)) - a|_1] + E[|G(F(b)) - b|_1]              (eq. 2; lambda = 10)
    L_idt = E[|G(b) - b|_1] + E[|F(a) - a|_1]                    (sec. 5.2; lambda_idt = 0.5 lambda)
    D_B minimises 1/2 (E[(D_B(b) - 1)^2] + E[D_B(G(a))^2])        (halved, as the paper's code)

D_B and D_A judge fakes drawn from a history pool of 50 (gen_runner/gans/history.py). Adam with
lr 2e-4, beta1 0.5; the learning rate stays constant, then decays linearly to zero from the
fraction `lr_decay_start` (1/2: the paper's 100 + 100 epochs) of the run, every step. Both
generators are one ModuleDict under one optimizer, both discriminators one under the other, as
the paper's code; G and F are `generator["AtoB"]` and `generator["BtoA"]`.

Deviations: the GAN loop takes D's step before G's on each batch (the paper's code: G first); the
fakes D judges are the same either way. Identity loss needs domains of the same channel count
(`identity_weight=0` otherwise).

Sample: `mode=translate mode.direction=AtoB | BtoA | cycle` (cycle: a | G(a) | F(G(a)) | the error
|a - F(G(a))|, the mean cycle L1 logged). Eval: the base's FID/KID and class preservation of G(a)
against domain B with `eval.features_ckpt` (a classifier of domain B); with `eval.features_ckpt_a`
(a classifier of domain A), or `eval.features=inception`, the same for F(b) against domain A
(`*_BtoA`); and the cycle L1 of both directions.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gen_runner.capabilities import Drawn, SampleRequest, eval_metric, sample_mode
from gen_runner.errors import UserError
from gen_runner.gans.history import HistoryPool
from gen_runner.gans.module import Losses
from gen_runner.gans.translation import Inputs, TranslationBatch, TranslationModule
from gen_runner.metrics.features import ClassifierFeatures, make_extractor

__all__ = ["CycleGANModule", "CycleBatch", "linear_decay"]

log = logging.getLogger("gen_runner")


def linear_decay(step: int, total: int, start: float) -> float:
    """The learning rate's factor at `step` of `total`: 1 until the fraction `start` of the run,
    then linear to 0 at `total`."""
    first = round(start * total)
    return 1.0 if step < first else max(0.0, (total - step) / max(1, total - first))


@dataclass
class CycleBatch(TranslationBatch):
    """A TranslationBatch (input = a, real = b, fake = G(a), labels = a's labels) with F's fake:
    `fake_a` = F(b)."""

    fake_a: torch.Tensor | None = None


class CycleGANModule(TranslationModule):
    """CycleGAN: G: A -> B, F: B -> A, D_A, D_B (see the module docstring)."""

    data_kinds = ("unpaired",)

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, cycle_weight: float = 10.0,
                 identity_weight: float = 0.5, pool_size: int = 50, lr_decay_start: float = 0.5, **kwargs):
        if cycle_weight < 0 or identity_weight < 0:
            raise UserError(f"model.cycle_weight={cycle_weight}, model.identity_weight={identity_weight}: "
                            "pass weights >= 0 (0 turns the term off)")
        if not 0 <= lr_decay_start <= 1:
            raise UserError(f"model.lr_decay_start={lr_decay_start}: pass the fraction of the run after which the "
                            "learning rate decays, in [0, 1] (1: constant)")
        if pool_size < 0:
            raise UserError(f"model.pool_size={pool_size}: pass 0 (no history) or more images (the paper: 50)")

        def both(make, input_shape, data_shape, names):  # the A->B net and its B->A twin
            return nn.ModuleDict({names[0]: make(input_shape=input_shape, data_shape=data_shape),
                                  names[1]: make(input_shape=data_shape, data_shape=input_shape)})

        super().__init__(functools.partial(both, generator, names=("AtoB", "BtoA")),
                         functools.partial(both, functools.partial(discriminator, conditional=False), names=("B", "A")),
                         None, data, optimizer, **kwargs)
        if identity_weight and self.input_shape[0] != self.data_shape[0]:
            raise UserError(f"model.identity_weight={identity_weight} needs domains with the same channels, these "
                            f"have {self.input_shape[0]} and {self.data_shape[0]}: set model.identity_weight=0")
        self.cycle_weight, self.identity_weight, self.lr_decay_start = cycle_weight, identity_weight, lr_decay_start
        self.pools = nn.ModuleDict({"A": HistoryPool(self.input_shape, pool_size),
                                    "B": HistoryPool(self.data_shape, pool_size)})

    # -- translating ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator["AtoB"](x)

    def backward_translate(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """F: B -> A, model space."""
        return self.generator["BtoA"](x)

    # -- training -------------------------------------------------------------------------------
    def gan_batch(self, batch) -> CycleBatch:
        a, b, labels_a, _ = batch
        a, b = self.preprocess(a), self.preprocess(b)
        return CycleBatch(b, self(a), labels=labels_a, input=a, fake_a=self.backward_translate(b))

    @staticmethod
    def _d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())

    def discriminator_loss(self, batch: CycleBatch) -> Losses:
        d = self.discriminator
        fake_b, fake_a = self.pools["B"](batch.fake), self.pools["A"](batch.fake_a)
        return Losses({"train/d_loss_B": self._d_loss(d["B"](batch.real), d["B"](fake_b)),
                       "train/d_loss_A": self._d_loss(d["A"](batch.input), d["A"](fake_a))})

    def generator_loss(self, batch: CycleBatch) -> Losses:
        g, d = self.generator, self.discriminator
        a, b = batch.input, batch.real
        terms = {"train/g_loss_AtoB": ((d["B"](batch.fake) - 1) ** 2).mean(),
                 "train/g_loss_BtoA": ((d["A"](batch.fake_a) - 1) ** 2).mean()}
        cycle_a = (g["BtoA"](batch.fake) - a).abs().mean()
        cycle_b = (g["AtoB"](batch.fake_a) - b).abs().mean()
        stats = {"train/cycle_l1_A": cycle_a, "train/cycle_l1_B": cycle_b}
        if self.cycle_weight:
            terms["train/g_cycle"] = self.cycle_weight * (cycle_a + cycle_b)
        if self.identity_weight and self.cycle_weight:  # lambda_idt = identity_weight * lambda
            identity = (g["AtoB"](b) - b).abs().mean() + (g["BtoA"](a) - a).abs().mean()
            terms["train/g_identity"] = self.identity_weight * self.cycle_weight * identity
        return Losses(terms, stats)

    def configure_optimizers(self):
        """The GAN's two optimizers, each with the constant-then-linear-decay schedule (stepped in
        `after_step`: manual optimization steps no scheduler itself)."""
        optimizers = super().configure_optimizers()
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else int(self.trainer.estimated_stepping_batches)
        factor = functools.partial(linear_decay, total=total, start=self.lr_decay_start)
        return list(optimizers), [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]

    def after_step(self, d: Losses, g: Losses | None) -> dict[str, torch.Tensor]:
        for scheduler in self.lr_schedulers():
            scheduler.step()
        return {"train/lr_g": torch.tensor(self.lr_schedulers()[0].get_last_lr()[0])}

    # -- sampling -------------------------------------------------------------------------------
    def read_input(self, request: SampleRequest, domain: str = "A") -> Inputs:
        """mode.direction=BtoA reads domain-B images (split=<name>: the data's B side)."""
        return super().read_input(request, "B" if request.options.get("direction") == "BtoA" else domain)

    def translate_columns(self, inputs: Inputs, options: dict, batch_size: int | None) -> list[torch.Tensor]:
        direction = options.get("direction", "AtoB")
        if direction == "BtoA":
            return [inputs.images, self.translated(inputs.images, None, batch_size, net=self.backward_translate)]
        if direction != "cycle":
            return super().translate_columns(inputs, options, batch_size)
        fake = self.translated(inputs.images, None, batch_size)
        back = self.translated(fake, None, batch_size, net=self.backward_translate)
        error = (back - inputs.images).abs()
        log.info("cycle L1, mean |a - F(G(a))| over %d images in [0, 1]: %.4f", len(error), error.mean().item())
        return [inputs.images, fake, back, error]

    @sample_mode("a row per input (input=<folder | .npy | split=test>, the first num_samples); mode.direction="
                 "AtoB: a | G(a); BtoA: b | F(b); cycle: a | G(a) | F(G(a)) | the error |a - F(G(a))|")
    def translate(self, request: SampleRequest) -> Drawn:
        direction = request.options.get("direction", "AtoB")
        if direction not in ("AtoB", "BtoA", "cycle"):
            raise UserError(f"mode.direction={direction}: choose AtoB, BtoA or cycle")
        return super().translate(request)

    # -- eval -----------------------------------------------------------------------------------
    def _domain_a_extractor(self, ctx):
        """The extractor for domain A: eval.features_ckpt_a's classifier, or inception (any domain)."""
        opts = ctx.options
        if opts.features_ckpt_a:
            return make_extractor("classifier", opts.features_ckpt_a, ctx.device)
        return None if isinstance(ctx.extractor, ClassifierFeatures) else ctx.extractor

    @eval_metric("fid_BtoA, kid_BtoA, ... (eval.metrics) of F(b) against real domain-A images, class_accuracy_BtoA",
                 needs="eval.features=classifier with eval.features_ckpt_a=<a classifier of domain A>, or "
                       "eval.features=inception")
    def reverse(self, ctx):
        if not ctx.options.features or (extractor := self._domain_a_extractor(ctx)) is None:
            return None
        n = ctx.options.num_samples
        parts = self.eval_parts(ctx, max(n, ctx.options.num_real))
        a, (b, _, labels_b, _) = self.batch_parts(parts, "A")[0], self.batch_parts(parts, "B")
        with self.seeded(ctx.generator()):
            outputs = self.translated(self.to_unit(b[:n]), None, ctx.options.batch_size,
                                      net=self.backward_translate)
        metrics, protocol = self.fidelity_against(ctx, outputs, a[: ctx.options.num_real], "A", extractor)
        if isinstance(extractor, ClassifierFeatures) and (found := self.class_accuracy_of(
                ctx, outputs, labels_b[:n], extractor)) is not None:
            metrics |= found[0]
        return {f"{k}_BtoA": v for k, v in metrics.items()}, {f"{k}_BtoA": v for k, v in protocol.items()}

    @eval_metric("cycle_l1_A: mean |F(G(a)) - a|, cycle_l1_B: mean |G(F(b)) - b| (images in [0, 1])")
    def cycle_consistency(self, ctx):
        n, step = ctx.options.num_samples, ctx.options.batch_size
        parts = self.eval_parts(ctx, n)
        a, b = (self.to_unit(self.batch_parts(parts, domain)[0][:n]) for domain in "AB")
        back_a = self.translated(self.translated(a, None, step), None, step, net=self.backward_translate)
        back_b = self.translated(self.translated(b, None, step, net=self.backward_translate), None, step)
        return {"cycle_l1_A": (back_a - a).abs().mean().item(), "cycle_l1_B": (back_b - b).abs().mean().item()}, {
            "cycle_l1": "mean absolute error of the round trips, images in [0, 1]", "num_cycled": len(a)}
