"""BiGAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning") and ALI (Dumoulin,
Belghazi, Poole, Mastropietro, Lamb, Arjovsky & Courville 2017, "Adversarially Learned Inference").

An encoder E: x -> z joins the generator G: z -> x, and the discriminator judges pairs: data with
its encoding (x, E(x)) against samples with their latent (G(z), z). With the standard objective

    V(D, E, G) = E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))],

D maximises V; E and G (one optimizer over both) play against it. At the optimum the two joint
distributions match, so E inverts G (the paper's Theorem 2). As the paper's sec. 3.4 recommends,
E and G minimise D's loss with the pairs' labels swapped ("inverting the labels": for the standard
objective softplus(-D(G(z), z)) + softplus(D(x, E(x))), the non-saturating form of both terms;
`model.objective.generator_loss=minimax` plays -V instead). Any objective's d_loss swapped this way
gives E and G their side of it (Wasserstein: E[D(x, E(x))] - E[D(G(z), z)]).

BiGAN's encoder is deterministic; ALI's is stochastic (`stochastic_encoder`): E outputs a mean and
a log standard deviation, and z = mu(x) + sigma(x) eps, eps ~ N(0, I), reparametrised (ALI's
sec. 2.3), so the pairs (x, E(x)) are drawn from q(z | x).

`sample mode=reconstruct` draws data next to G(E(x)); `eval` reports `reconstruction_mse` and,
on labelled data, `probe_accuracy`, a linear classifier on E(x) (gen_runner/metrics/inference.py).
No packing and no regularizer terms: D judges single pairs (GradientPenalty and R1 differentiate
a D of x alone). VEEGAN (gans/veegan.py) is this model with its own losses.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn

from gen_runner.base import Autoencoding
from gen_runner.capabilities import eval_metric
from gen_runner.gans.module import GANBatch, GANModule, Losses
from gen_runner.metrics.inference import inference_metrics
from gen_runner.gans.objectives import Objective

__all__ = ["BiGANModule"]


class BiGANModule(GANModule, Autoencoding):
    """The GAN loop with an `encoder(data_shape, latent_dim)` and a
    `discriminator(data_shape, latent_dim)` of (x, z) pairs; the losses pair the batch's fakes
    with their z (`GANBatch.noise`)."""

    judges_single_examples = "the discriminator judges single (x, z) pairs"

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 encoder: Callable[..., nn.Module], objective: Objective | None, data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 100,
                 stochastic_encoder: bool = False, **kwargs):
        name = type(self).__name__.removesuffix("Module")
        if kwargs.get("regularizers"):
            raise ValueError(f"model.regularizers: {name} takes no regularizer terms; set model.regularizers=[]")
        super().__init__(generator, functools.partial(discriminator, latent_dim=latent_dim), objective, data,
                         optimizer, latent_dim, **kwargs)
        self.stochastic_encoder = stochastic_encoder
        self.encoder = encoder(data_shape=self.data_shape, latent_dim=latent_dim * (2 if stochastic_encoder else 1))

    def encode(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """E(x): examples in model space -> latents; a stochastic encoder's draw, or its mean
        (`sample=False`, the features a linear probe reads)."""
        if not self.stochastic_encoder:
            return self.encoder(x)
        mean, log_std = self.encoder(x).chunk(2, dim=1)
        return mean + log_std.exp() * torch.randn_like(mean) if sample else mean

    def pair_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """D's logit for each (x, z) pair; high for data pairs."""
        return self.discriminator(x, z)

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) in data space, for data as delivered (discrete pixel values, or points)."""
        return self.decode(self.encode(self.preprocess(x.to(self.device))))

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        with torch.no_grad():
            z_real = self.encode(batch.real)
        data_pairs = self.pair_logits(batch.real, z_real)
        return Losses({"train/d_loss": self.objective.d_loss(data_pairs,
                                                             self.pair_logits(batch.fake.detach(), batch.noise))})

    def generator_loss(self, batch: GANBatch) -> Losses:
        data_pairs = self.pair_logits(batch.real, self.encode(batch.real))
        sample_pairs = self.pair_logits(batch.fake, batch.noise)
        if getattr(self.objective, "generator_loss", None) == "minimax":
            return Losses({"train/g_loss": -self.objective.d_loss(data_pairs, sample_pairs)})
        return Losses({"train/g_loss": self.objective.d_loss(sample_pairs, data_pairs)})  # the labels swapped

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.generator.parameters(), self.encoder.parameters())

    @eval_metric("reconstruction_mse; labelled data: probe_accuracy (a linear probe on E(x))")
    def inference(self, ctx):
        return inference_metrics(ctx)
