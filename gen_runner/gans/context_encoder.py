"""Context encoders (Pathak, Krähenbühl, Donahue, Darrell & Efros 2016, "Context Encoders: Feature
Learning by Inpainting").

G sees an image with a region dropped, M the binary mask (1 = dropped), and predicts the region
from its context: F((1 - M) ⊙ x), the dropped pixels filled with a constant. The joint loss (sec. 3.2):

    L = lambda_rec L_rec + lambda_adv L_adv
    L_rec = ||M ⊙ (x - F((1 - M) ⊙ x))||^2_2, normalized: the mean squared error over the dropped
            region alone (the context's pixels never enter it)
    L_adv = max_D E[log D(x)] + E[log(1 - D(F((1 - M) ⊙ x)))]

with lambda_rec = 0.999, lambda_adv = 0.001 (sec. 5.1); `adversarial_weight=0` is the paper's
L2-only ablation (its fig. 5/6 blurry fills). The filled image is the prediction pasted into the
context, (1 - M) ⊙ x + M ⊙ F(...): what D judges, what `translate` shows and eval scores. The
generator's adversarial term is the non-saturating -log D (the paper's code's). Adam 2e-4,
beta1 0.5 (the paper's code). Data: paired batches with masks (data=inpaint_center), or plain
images (data=image_folder, digits, ...: each image its own target); images without a mask (plain
image data, `translate` from a folder or file) get the central square of half the side dropped,
the paper's central region (64 of 128).

Deviations: the paper's code fills the hole with the dataset's mean colour; here with 0 in [-1, 1]
(mid grey). Its overlap (a 4-pixel border of the hole predicted too, its L2 weighted 10x) is not
reproduced, and D judges the whole filled image, not the central region alone (which also serves
random masks; the context pixels are the same in real and filled images).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from gen_runner.capabilities import SampleRequest
from gen_runner.data.translation import center_mask
from gen_runner.errors import UserError
from gen_runner.gans.module import Losses
from gen_runner.gans.objectives import Objective
from gen_runner.gans.translation import Inputs, TranslationBatch, TranslationModule

__all__ = ["ContextEncoderModule", "masked_mse"]

FILL = 0.0  # the dropped region's value in G's input, in [-1, 1]


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean squared error over the masked entries alone (mask [B, 1, H, W] broadcast over channels)."""
    mask = mask.expand_as(target)
    return ((output - target) ** 2 * mask).sum() / mask.sum().clamp_min(1)


class ContextEncoderModule(TranslationModule):
    """A context encoder G and a DCGAN D, trained on lambda_rec L_rec + lambda_adv L_adv."""

    data_kinds = ("paired", "images")

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 objective: Objective, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 reconstruction_weight: float = 0.999, adversarial_weight: float = 0.001, **kwargs):
        if reconstruction_weight < 0 or adversarial_weight < 0 or reconstruction_weight + adversarial_weight <= 0:
            raise UserError(f"model.reconstruction_weight={reconstruction_weight}, model.adversarial_weight="
                            f"{adversarial_weight}: the weights are >= 0 and at least one is positive")
        super().__init__(generator, discriminator, objective, data, optimizer, **kwargs)
        self.reconstruction_weight, self.adversarial_weight = reconstruction_weight, adversarial_weight

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The filled image: G's prediction from the context, pasted into the hole."""
        if mask is None:
            mask = center_mask(*x.shape[2:]).to(x.device).expand(len(x), -1, -1, -1)
        context = x * (1 - mask)
        prediction = self.generator(context + FILL * mask)
        return context + prediction * mask

    def batch_parts(self, batch: Sequence[torch.Tensor], domain: str = "A") -> tuple:
        """Paired batches with masks as the base; plain image batches (x[, labels]) are their own
        targets, with the central region dropped."""
        if self.data_info["kind"] == "images":
            x = batch[0]
            return x, x, batch[1] if len(batch) > 1 else None, center_mask(*x.shape[2:]).expand(len(x), -1, -1, -1)
        if len(batch) < 4:
            raise UserError("model=context_encoder fills masked regions: train it on data with masks "
                            "(data=inpaint_center) or on plain images (data=image_folder: the central region)")
        return super().batch_parts(batch, domain)

    def read_input(self, request: SampleRequest, domain: str = "A") -> Inputs:
        """As the base; inputs without masks get the central one, and every input is shown with its hole."""
        inputs = super().read_input(request, domain)
        if inputs.masks is None:
            inputs.masks = center_mask(*inputs.images.shape[2:]).expand(len(inputs.images), -1, -1, -1)
        inputs.images = inputs.images * (1 - inputs.masks)
        return inputs

    def discriminator_loss(self, batch: TranslationBatch) -> Losses:
        return Losses({"train/d_loss": self.objective.d_loss(self.discriminator(batch.real),
                                                             self.discriminator(batch.fake.detach()))})

    def generator_loss(self, batch: TranslationBatch) -> Losses:
        reconstruction = masked_mse(batch.fake, batch.real, batch.mask)
        terms = {"train/g_rec": self.reconstruction_weight * reconstruction}
        if self.adversarial_weight:
            terms["train/g_loss"] = self.adversarial_weight * self.objective.g_loss(self.discriminator(batch.fake))
        return Losses(terms, {"train/rec_mse": reconstruction})
