"""pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial
Networks").

A conditional GAN on paired images: G is a U-Net (gen_runner/nets/unet.py) whose only noise is
dropout, kept on at test time; D a PatchGAN (gen_runner/nets/patchgan.py) judging (input, output)
pairs concatenated along the channels, patch by patch. The objective (eq. 4):

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]        L_L1 = E[|y - G(x)|_1]

with the non-saturating generator loss -log D(x, G(x)) (sec. 3.3, as Goodfellow et al.), each
patch's logit a separate term averaged over the map, and D's loss divided by 2 "to slow down the
rate at which D learns relative to G" (sec. 3.3). `l1_weight` is lambda = 100 (0: "cGAN alone"),
`adversarial_weight` scales L_cGAN in G's loss (0: "L1 alone"; D still trains, unused), as the
paper's table 1 ablations. Adam with lr 2e-4, beta1 0.5 (sec. 3.3); one D step then one G step per
batch (the GAN loop). BatchNorm uses the test batch's statistics at test time and dropout stays on
(the paper's "batch size 1: instance normalization" with `model.norm=batch` and data.batch_size=1,
or `model.norm=instance`). Deviation: the loss `model.objective` is any of the project's (the
paper's is `standard`, the default).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from gen_runner.errors import UserError
from gen_runner.gans.module import Losses
from gen_runner.gans.objectives import Objective
from gen_runner.gans.translation import TranslationBatch, TranslationModule

__all__ = ["Pix2PixModule"]


class Pix2PixModule(TranslationModule):
    """pix2pix: a U-Net G and a conditional PatchGAN D, trained on L_cGAN + lambda L_L1."""

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 objective: Objective, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 l1_weight: float = 100.0, adversarial_weight: float = 1.0, norm: str = "batch", **kwargs):
        if l1_weight < 0 or adversarial_weight < 0 or l1_weight + adversarial_weight <= 0:
            raise UserError(f"model.l1_weight={l1_weight}, model.adversarial_weight={adversarial_weight}: the "
                            "weights are >= 0 and at least one is positive")
        super().__init__(functools.partial(generator, norm=norm), functools.partial(discriminator, norm=norm),
                         objective, data, optimizer, **kwargs)
        self.l1_weight, self.adversarial_weight = l1_weight, adversarial_weight

    def critic(self, pair: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's patch logits [B, 1, h, w] for (input, output) pairs concatenated along the channels."""
        return self.discriminator(pair)

    def discriminator_loss(self, batch: TranslationBatch) -> Losses:
        x = batch.input
        real, fake = self.critic(torch.cat([x, batch.real], 1)), self.critic(torch.cat([x, batch.fake.detach()], 1))
        return Losses({"train/d_loss": 0.5 * self.objective.d_loss(real, fake)})

    def generator_loss(self, batch: TranslationBatch) -> Losses:
        terms = {}
        if self.adversarial_weight:
            fake = self.critic(torch.cat([batch.input, batch.fake], 1))
            terms["train/g_loss"] = self.adversarial_weight * self.objective.g_loss(fake)
        l1 = (batch.fake - batch.real).abs().mean()
        if self.l1_weight:
            terms["train/g_l1"] = self.l1_weight * l1
        return Losses(terms, {"train/l1": l1})
