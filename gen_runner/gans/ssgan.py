"""The semi-supervised GAN (Odena 2016, "Semi-Supervised Learning with Generative Adversarial
Networks"; Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen 2016, "Improved Techniques for
Training GANs", sec. 3.1 and 5).

D is a classifier with K + 1 classes: the K data classes and "generated". Its net outputs K logits
l_1..l_K; the generated class's logit is fixed at 0 (Salimans et al.'s parametrization, which loses
nothing: softmax is invariant to a shift of all K + 1 logits), so with Z(x) = sum_k exp l_k(x)

    D(x) = P(real | x) = Z / (Z + 1) = sigmoid(lse(x)),   lse(x) = logsumexp_k l_k(x),

and lse is D's real-vs-fake logit (`critic`, which regularizers differentiate). D minimises

    L_supervised + w L_unsupervised,
    L_supervised   = cross-entropy of the K logits on the labelled examples (x_l, y_l),
    L_unsupervised = -E_data log D(x) - E_z log(1 - D(G(z))) = E softplus(-lse(x)) + E softplus(lse(G(z))),

the standard GAN objective's d_loss on the lse logits, on the unlabelled batch x (the whole train
split, labels ignored), w = `unsupervised_weight` (1, the paper's sum; the authors' code weights
the two unsupervised terms 0.5 each, i.e. w = 0.5). G minimises feature matching (sec. 3.1):
||E_x f(x) - E_z f(G(z))||^2 / d, the mean over the d units of D's last hidden layer f (before its
noise) of the squared difference of the batch means, as the authors' code; or
`generator_loss=non_saturating`, softplus(-lse(G(z))).

The data must be semi-supervised (`data.labels_per_class=N`): the train batches are
(x, y, x_labelled, y_labelled) (gen_runner/data/datamodule.py) and each D step reads a labelled
batch as large as the unlabelled one, as the authors' code (the loop hands it to the losses as
`GANBatch.extra`). D's loss logs `train/d_loss`, the sum of its terms, and `train/labelled_acc`,
its accuracy on the labelled batch, as statistics. D sees images in [0, 1], the authors'
range: G's tanh output u in [-1, 1] enters D as (u + 1) / 2 = sigmoid(2a), the authors' sigmoid
generator up to a factor 2 in its last pre-activation. Not reproduced: the authors' data-dependent
initialization of the weight-normalised layers and their test-time Polyak average of D's weights
(rate 1e-4); their G step reads a second unlabelled batch, here the D step's batch. The model stays
an unconditional GAN for `sample` and `eval` (it generates without labels; `num_classes` is unset),
and it classifies: `validation_step` logs val/acc, and `score` gives eval its accuracy and error.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.capabilities import eval_metric
from gen_runner.errors import UserError
from gen_runner.gans.module import GANBatch, GANModule, Losses
from gen_runner.gans.objectives import StandardGAN
from gen_runner.metrics.classification import classification_metrics

__all__ = ["SSGANModule", "real_logit", "unsupervised_loss", "feature_matching"]


def real_logit(logits: torch.Tensor) -> torch.Tensor:
    """D's real-vs-generated logit from the K class logits, the generated class's logit fixed at 0:
    log(Z / 1) with Z = sum_k exp l_k, so sigmoid of it is D(x) = Z / (Z + 1)."""
    return torch.logsumexp(logits, dim=1)


def unsupervised_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E log D(x) - E log(1 - D(G(z))) from [B, K] class logits of data and of generated examples."""
    return F.softplus(-real_logit(real_logits)).mean() + F.softplus(real_logit(fake_logits)).mean()


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Mean over the feature units of (batch mean of f on data - batch mean of f on fakes)^2."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).mean()


class SSGANModule(GANModule):
    judges_single_examples = "the discriminator classifies single examples"

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 100,
                 unsupervised_weight: float = 1.0, generator_loss: str = "feature_matching", **kwargs):
        num_classes = data.get("num_classes")
        if not num_classes or not data.get("labels_per_class"):
            raise UserError("model=ssgan learns from a few labels: pass labelled data with data.labels_per_class=N "
                            "(e.g. data=digits data.labels_per_class=10: 100 labels)")
        if generator_loss not in ("feature_matching", "non_saturating"):
            raise ValueError(f"model.generator_loss={generator_loss!r}: choose feature_matching or non_saturating")
        super().__init__(generator, functools.partial(discriminator, num_classes=num_classes), StandardGAN(), data,
                         optimizer, latent_dim, **kwargs)
        self.label_classes = num_classes  # what D classifies; `num_classes` would make the GAN conditional
        self.unsupervised_weight, self.generator_objective = unsupervised_weight, generator_loss

    # -- D as a classifier ----------------------------------------------------------------------
    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> what D reads: images [-1, 1] -> [0, 1]; points unchanged."""
        return (x + 1) / 2 if self.is_image else x

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """D's K class logits of examples in model space."""
        return self.discriminator(self.d_input(x))

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return real_logit(self.classify(x))

    # -- losses ----------------------------------------------------------------------------------
    def labelled(self, batch: GANBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's labelled batch: x_labelled in model space, y_labelled."""
        if len(batch.extra) != 2:
            raise UserError("model=ssgan needs semi-supervised batches (x, y, x_labelled, y_labelled): "
                            "pass data.labels_per_class=N")
        x_labelled, y_labelled = batch.extra
        return self.preprocess(x_labelled), y_labelled

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        x_labelled, y_labelled = self.labelled(batch)
        real, fake = batch.real, batch.fake.detach()
        logits_labelled = self.classify(x_labelled)
        terms = {"train/d_supervised": F.cross_entropy(logits_labelled, y_labelled),
                 "train/d_unsupervised": self.unsupervised_weight * unsupervised_loss(self.classify(real),
                                                                                     self.classify(fake))}
        terms |= self.regularizer_terms("discriminator", real, fake)
        return Losses(terms, {"train/d_loss": sum(terms.values()),
                              "train/labelled_acc": (logits_labelled.argmax(1) == y_labelled).float().mean()})

    def generator_loss(self, batch: GANBatch) -> Losses:
        real, fake = batch.real, batch.fake
        if self.generator_objective == "feature_matching":
            with torch.no_grad():
                real_features = self.discriminator.features(self.d_input(real))[0]
            loss = feature_matching(real_features, self.discriminator.features(self.d_input(fake))[0])
        else:
            loss = F.softplus(-self.critic(fake)).mean()
        return Losses({"train/g_loss": loss} | self.regularizer_terms("generator", real, fake))

    # -- validation ------------------------------------------------------------------------------

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        logits = self.discriminator(self.to_unit(x))
        self.log_dict({"val/loss": F.cross_entropy(logits, y), "val/acc": (logits.argmax(1) == y).float().mean()},
                      prog_bar=True, batch_size=len(y))

    @eval_metric("accuracy, error (the discriminator's argmax over the K data classes)", needs="labelled data")
    def classification(self, ctx):
        return classification_metrics(ctx, lambda x: self.discriminator(self.to_unit(x)), ("accuracy", "error"),
                                      "the discriminator's argmax over the K data classes")
