"""Conditional GAN (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets").

The class label y enters both nets, G(z, y) and D(x, y) (gen_runner/nets/conditional.py: y
concatenated to the inputs, or D as Miyato & Koyama's projection discriminator), and the game is
the objective's (model/objective) on D(x, y): real pairs (x, y) against generated (G(z, y), y).

The fakes of a step are generated for the real batch's labels, a draw from the data's class
distribution (the label prior p(y) the papers sample): the generated label marginal then matches
the data's also when classes are unbalanced, and everything D judges in a step (real, fake and
the regularizers' interpolates between them) carries the same labels. `sample` and `eval` draw
for given labels, or for labels uniform over the classes. No packing: D judges one example with
its label (`judges_single_examples`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from gen_runner.capabilities import eval_metric
from gen_runner.errors import UserError
from gen_runner.gans.module import GANModule
from gen_runner.gans.objectives import Objective
from gen_runner.metrics.suite import class_accuracy_metric

__all__ = ["ConditionalGANModule"]


class ConditionalGANModule(GANModule):
    """The GAN loop with `generator(..., num_classes)` and `discriminator(..., num_classes)` nets
    taking the labels: G(z, y), D(x, y)."""

    inputs = ("noise", "labels")
    judges_single_examples = "the discriminator judges one example with its label"

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 objective: Objective, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 **kwargs):
        num_classes = data.get("num_classes")
        if not num_classes:
            raise UserError("conditional GANs (model=cgan, acgan) need labelled data: data=digits, mnist, "
                            "fashion_mnist, a tensor_file with labels (y) or an image_folder with class subfolders")
        if data.get("labels_per_class"):
            raise UserError(f"conditional GANs (model=cgan, acgan) need every training label, but "
                            f"data.labels_per_class={data['labels_per_class']} hides most; drop it (or train the "
                            "semi-supervised model=ssgan)")
        super().__init__(functools.partial(generator, num_classes=num_classes),
                         functools.partial(discriminator, num_classes=num_classes), objective, data, optimizer,
                         **kwargs)
        self.num_classes = num_classes

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(noise, labels)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D(x, y): the step's real examples and fakes share the batch's labels."""
        return self.discriminator(x, labels)

    @eval_metric("class_accuracy", needs="eval.features=classifier, a classifier of the model's classes")
    def class_accuracy(self, ctx):
        return class_accuracy_metric(ctx)
