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
(the weighted cross-entropies) and `train/d_real_acc`, D's class accuracy on the real batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gen_runner.gans.conditional import ConditionalGANModule

__all__ = ["ACGANModule"]


class ACGANModule(ConditionalGANModule):
    def __init__(self, *args, class_weight: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weight = class_weight

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The source logit."""
        return self.discriminator(x)[0]

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        y, fake = self.batch_labels, fake.detach()
        (source_real, class_real), (source_fake, class_fake) = self.discriminator(real), self.discriminator(fake)
        self.real_accuracy = (class_real.argmax(dim=1) == y).float().mean().detach()
        terms = {"train/d_loss": self.objective.d_loss(source_real, source_fake),
                 "train/d_class_loss": self.class_weight * (F.cross_entropy(class_real, y)
                                                            + F.cross_entropy(class_fake, y))}
        return terms | self.regularizer_terms("discriminator", real, fake)

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        source_fake, class_fake = self.discriminator(fake)
        terms = {"train/g_loss": self.objective.g_loss(source_fake),
                 "train/g_class_loss": self.class_weight * F.cross_entropy(class_fake, self.batch_labels)}
        return terms | self.regularizer_terms("generator", real, fake)

    def training_step(self, batch, batch_idx: int):
        logs = super().training_step(batch, batch_idx)
        self.log("train/d_real_acc", self.real_accuracy, prog_bar=True)  # set by this step's discriminator_loss
        return logs
