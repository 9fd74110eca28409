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

from gen_runner.gans.module import GANModule
from gen_runner.gans.objectives import Objective

__all__ = ["BiGANModule"]


class BiGANModule(GANModule):
    """The GAN loop with an `encoder(data_shape, latent_dim)` and a
    `discriminator(data_shape, latent_dim)` of (x, z) pairs; the latent batch of each step is kept
    as `noise_batch`, so the losses see the z of the batch's fakes."""

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 encoder: Callable[..., nn.Module], objective: Objective | None, data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 100,
                 stochastic_encoder: bool = False, **kwargs):
        name = type(self).__name__.removesuffix("Module")
        if kwargs.get("pack", 1) != 1:
            raise ValueError(f"model.pack={kwargs['pack']}: {name}'s discriminator judges single (x, z) pairs; "
                             "set model.pack=1")
        if kwargs.get("regularizers"):
            raise ValueError(f"model.regularizers: {name} takes no regularizer terms; set model.regularizers=[]")
        super().__init__(generator, functools.partial(discriminator, latent_dim=latent_dim), objective, data,
                         optimizer, latent_dim, **kwargs)
        self.stochastic_encoder = stochastic_encoder
        self.encoder = encoder(data_shape=self.data_shape, latent_dim=latent_dim * (2 if stochastic_encoder else 1))
        self.noise_batch: torch.Tensor | None = None

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The latent batch, kept as `noise_batch`: the base step passes only G(z) to the losses."""
        self.noise_batch = super().draw_noise(n, generator)
        return self.noise_batch

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
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) in data space, for data as delivered (discrete pixel values, or points)."""
        return self.decode(self.encode(self.preprocess(x.to(self.device))))

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            z_real = self.encode(real)
        data_pairs = self.pair_logits(real, z_real)
        return {"train/d_loss": self.objective.d_loss(data_pairs, self.pair_logits(fake.detach(), self.noise_batch))}

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        data_pairs, sample_pairs = self.pair_logits(real, self.encode(real)), self.pair_logits(fake, self.noise_batch)
        if getattr(self.objective, "generator_loss", None) == "minimax":
            return {"train/g_loss": -self.objective.d_loss(data_pairs, sample_pairs)}
        return {"train/g_loss": self.objective.d_loss(sample_pairs, data_pairs)}  # the labels swapped

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.generator.parameters(), self.encoder.parameters())
