"""InfoGAN (Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel 2016, "InfoGAN: Interpretable
Representation Learning by Information Maximizing Generative Adversarial Nets").

G's input is noise z and a latent code c: `categorical` one-hot codes (Cat(K) each, uniform) and
`continuous` codes (U(-1, 1) each), as the paper's MNIST model: one 10-way code, two continuous
ones, 62 noise dimensions. A head Q on D's body (nets/conditional.py's auxiliary head, the one
AC-GAN's class head is built from, with the codes' parameters as outputs) models Q(c | x): a
softmax per categorical code, a factored Gaussian with fixed unit standard deviation (its mean the
head's output) per continuous code. The variational lower bound of I(c; G(z, c)) (eq. 4) is

    L_I = E_{c ~ p(c), x ~ G(z, c)}[log Q(c | x)] + H(c),

and both G and Q (with D) minimise -lambda L_I beside their GAN losses (eq. 5). `info_loss` is
sum_k lambda_k (-log Q(c_k | x)) averaged over the batch: cross-entropy for a categorical code,
(c - mu)^2 / 2 + log(2 pi) / 2 for a continuous one; H(c) is a constant and is only logged,
as `train/mi_bound` = H(c) - mean(-log Q(c | x)) (unweighted, in nats; log K at best for a K-way
code alone; a statistic of D's loss). The paper sets lambda = 1 for discrete codes and "a smaller lambda" for continuous
ones, "to ensure lambda L_I is on the same scale as the GAN objective" (sec. 7): defaults 1 and 0.1
(the authors' MNIST code weights both by 1, `info_reg_coeff`: set lambda_continuous=1 for it).

`draw_noise` returns G's whole input [z, c], so sampling, eval and latent walks work unchanged, and
the losses read each step's codes off its noise (`GANBatch.noise`);
`traverse` holds z fixed and varies the codes (the paper's fig. 2). Not reproduced: Q's own
hidden layer (128 units, BatchNorm, leaky ReLU in the paper). Q's parameters are trained with D's
(one optimizer, as the authors' code: lr 2e-4 for D and Q, 1e-3 for G, model.lr_d / lr_g).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.capabilities import Drawn, SampleRequest, eval_metric, sample_mode
from gen_runner.errors import UserError
from gen_runner.gans.module import GANBatch, GANModule, Losses
from gen_runner.metrics.features import ClassifierFeatures
from gen_runner.metrics.fidelity import code_accuracy

__all__ = ["InfoGANModule"]


class InfoGANModule(GANModule):
    judges_single_examples = "Q reads one example's code"

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module], *args,
                 latent_dim: int = 62, categorical: Sequence[int] = (10,), continuous: int = 2,
                 lambda_categorical: float = 1.0, lambda_continuous: float = 0.1, **kwargs):
        """`discriminator(data_shape, num_classes)` returns (source logit, Q's code_dim outputs)."""
        self.noise_dim, self.categorical, self.continuous = latent_dim, list(categorical), continuous
        self.code_dim = sum(self.categorical) + continuous
        super().__init__(generator, functools.partial(discriminator, num_classes=self.code_dim), *args,
                         latent_dim=latent_dim + self.code_dim, **kwargs)
        self.lambda_categorical, self.lambda_continuous = lambda_categorical, lambda_continuous

    # -- the latent code ---------------------------------------------------------------------------
    def draw_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n, code_dim]: one-hot categorical codes, then continuous codes U(-1, 1)."""
        parts = []
        for k in self.categorical:
            index = torch.randint(k, (n,), generator=generator) if generator is not None else \
                torch.randint(k, (n,), device=self.device)
            parts.append(F.one_hot(index, k).float().to(self.device))
        parts.append(self.noise(n, self.continuous, generator=generator, uniform=True))
        return torch.cat(parts, dim=1)

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self.noise(n, self.noise_dim, generator=generator, uniform=self.latent == "uniform")
        return torch.cat([z, self.draw_codes(n, generator)], dim=1)

    def codes_of(self, noise: torch.Tensor) -> torch.Tensor:
        """The codes c [B, code_dim] of G's inputs [z, c]."""
        return noise[:, self.noise_dim:]

    def split_codes(self, codes: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """[B, code_dim] -> ([B, K] per categorical code, [B, continuous])."""
        parts = torch.split(codes, [*self.categorical, self.continuous], dim=1)
        return list(parts[:-1]), parts[-1]

    def code_entropy(self) -> float:
        """H(c) in nats: log K per categorical code, log 2 per U(-1, 1) code."""
        return sum(map(math.log, self.categorical)) + self.continuous * math.log(2)

    # -- the information term -----------------------------------------------------------------------
    def info_terms(self, q: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lambda-weighted -log Q(c | x), unweighted -log Q(c | x)), each averaged over the batch,
        from Q's outputs q [B, code_dim] (categorical logits, then continuous means)."""
        logits, means = self.split_codes(q)
        onehots, values = self.split_codes(codes)
        categorical = sum((F.cross_entropy(l, c.argmax(1)) for l, c in zip(logits, onehots)), q.new_zeros(()))
        continuous = (0.5 * (values - means) ** 2 + 0.5 * math.log(2 * math.pi)).sum(1).mean()
        return (self.lambda_categorical * categorical + self.lambda_continuous * continuous,
                categorical + continuous)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The source logit (what regularizers differentiate)."""
        return self.discriminator(x)[0]

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        real, fake = batch.real, batch.fake.detach()
        source_fake, q = self.discriminator(fake)
        info, nll = self.info_terms(q, self.codes_of(batch.noise))
        terms = {"train/d_loss": self.objective.d_loss(self.critic(real), source_fake), "train/d_info_loss": info}
        return Losses(terms | self.regularizer_terms("discriminator", real, fake),
                      {"train/mi_bound": self.code_entropy() - nll})

    def generator_loss(self, batch: GANBatch) -> Losses:
        source_fake, q = self.discriminator(batch.fake)
        terms = {"train/g_loss": self.objective.g_loss(source_fake),
                 "train/g_info_loss": self.info_terms(q, self.codes_of(batch.noise))[0]}
        return Losses(terms | self.regularizer_terms("generator", batch.real, batch.fake))

    # -- traversals (the paper's fig. 2) --------------------------------------------------------------
    def traverse_inputs(self, code: int, rows: int, columns: int, span: float,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """G's inputs [rows * columns, latent_dim] for a grid: the first categorical code's value
        is the row (row r: value r mod K), continuous code `code` sweeps [-span, span] along the
        columns; z and the other continuous codes are one draw, shared by the whole grid (the
        other categorical codes too)."""
        if not 0 <= code < self.continuous:
            raise UserError(f"mode.code={code}: this InfoGAN has continuous codes 0..{self.continuous - 1}")
        noise = self.draw_noise(1, generator).expand(rows * columns, -1).clone()
        sweep = torch.linspace(-span, span, columns, device=self.device)
        noise[:, self.latent_dim - self.continuous + code] = sweep.repeat(rows)
        if self.categorical:
            k = self.categorical[0]
            values = torch.arange(rows, device=self.device).remainder(k).repeat_interleave(columns)
            noise[:, self.noise_dim : self.noise_dim + k] = F.one_hot(values, k).float()
        return noise

    @sample_mode("a row per value of the first categorical code, continuous code `mode.code` swept over "
                 "[-span, span] along `mode.steps` columns, one z for the grid (the paper's fig. 2)")
    def traverse(self, request: SampleRequest) -> Drawn:
        if request.labels is not None:
            raise UserError("mode=traverse sets the codes itself; drop labels/per_class")
        opts = request.options
        rows = self.categorical[0] if self.categorical else 1
        noise = self.traverse_inputs(opts["code"], rows, opts["steps"], opts["span"], request.generator)
        return Drawn(self.decode_batches(noise, None, request.temperature, request.batch_size), None, opts["steps"])

    @eval_metric("code_accuracy", needs="a categorical code and eval.features=classifier")
    def code_accuracy(self, ctx):
        """How well the first categorical code predicts the features classifier's label."""
        if not self.categorical or not ctx.options.features or not isinstance(ctx.extractor, ClassifierFeatures):
            return None
        generated = ctx.generated
        codes = self.split_codes(generated.noise[:, self.noise_dim:])[0][0].argmax(1).cpu()
        return {"code_accuracy": code_accuracy(generated.logits, codes)}, {
            "code_accuracy": "InfoGAN: accuracy of the first categorical code as a predictor of the features "
                             "classifier's label, under the best one-to-one code-to-class map (Hungarian)"}
