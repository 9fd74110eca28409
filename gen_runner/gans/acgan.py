"""AC-GAN (Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs").

G(z, c) takes the class as a conditional GAN's generator does (gans/conditional.py, which also
says which labels the fakes get: the real batch's); D sees x alone and has two heads on a shared
body (nets/conditional.py): the source logit and the class logits. With

    L_S = E[log P(S = real | x_real)] + E[log P(S = fake | x_fake)]
    L_C = E[log P(C = c | x_real)] + E[log P(C = c | x_fake)],

D maximises L_S + L_C and G maximises L_C - L_S. Here D minimises
d_loss(source logits) + w (CE(real) + CE(fake)) and G minimises g_loss(source logits) + w CE(fake),
w = `class_weight` (1 in the paper). The source terms are the objective's (model/objective): the
standard objective's d_loss is -L_S, and its g_loss is by default the non-saturating
-E[log P(S = real | x_fake)], the usual practice, in place of the paper's L_S (same fixed point,
stronger early gradients); `model.objective.generator_loss=minimax` plays the paper's game exactly.
Regularizers differentiate the source logit. Logged: `train/d_class_loss` and `train/g_class_loss`
(the weighted cross-entropies, loss terms) and `train/d_real_acc`, D's class accuracy on the real
batch (a statistic of D's loss).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gen_runner.gans.conditional import ConditionalGANModule
from gen_runner.gans.module import GANBatch, Losses

__all__ = ["ACGANModule"]


class ACGANModule(ConditionalGANModule):
    def __init__(self, *args, class_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weight = class_weight

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The source logit (D sees x alone)."""
        return self.discriminator(x)[0]

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        real, fake, y = batch.real, batch.fake.detach(), batch.labels
        (source_real, class_real), (source_fake, class_fake) = self.discriminator(real), self.discriminator(fake)
        terms = {"train/d_loss": self.objective.d_loss(source_real, source_fake),
                 "train/d_class_loss": self.class_weight * (F.cross_entropy(class_real, y)
                                                            + F.cross_entropy(class_fake, y))}
        accuracy = (class_real.argmax(dim=1) == y).float().mean()
        return Losses(terms | self.regularizer_terms("discriminator", real, fake), {"train/d_real_acc": accuracy})

    def generator_loss(self, batch: GANBatch) -> Losses:
        source_fake, class_fake = self.discriminator(batch.fake)
        terms = {"train/g_loss": self.objective.g_loss(source_fake),
                 "train/g_class_loss": self.class_weight * F.cross_entropy(class_fake, batch.labels)}
        return Losses(terms | self.regularizer_terms("generator", batch.real, batch.fake))
