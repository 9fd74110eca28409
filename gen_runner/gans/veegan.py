"""VEEGAN (Srivastava, Valkov, Russell, Gutmann & Sutton 2017, "VEEGAN: Reducing Mode Collapse in
GANs using Implicit Variational Learning").

A reconstructor F maps data back to the noise (an MLP on flattened examples), and the
discriminator D(z, x) judges (noise, data) pairs: an MLP on [z, flattened x]. Signs as in the
paper's Algorithm 1 and the authors' code:

- D minimises the logistic loss with the generator's pairs (z, G(z)), z ~ p0, as class 1 and the
  reconstructor's pairs (z_g, x), x ~ data, z_g ~ N(F(x), reconstructor_std^2 I), as class 0:
  softplus(-D(z, G(z))) + softplus(D(z_g, x)). At its optimum D's logit is the log density ratio
  log [q(x|z) p0(z)] / [p(z|x) p(x)], so its mean over the generator's pairs estimates the KL term.
- G and F together (one optimizer over both) minimise E_z[D(z, G(z))] + E_z[||z - F(G(z))||_2^2]:
  the KL estimate (`train/g_loss`; D's weights get no gradient) plus the reconstruction of the
  noise (`train/reconstruction`), summed over the noise's dimensions. F enters only the latter.

The authors' code samples z_g with unit variance around F(x) (`reconstructor_std` = 1; 0 makes F
deterministic), and its reconstruction term is that Gaussian's log-likelihood, i.e. half the
squared distance; the paper's squared distance is used here. Not reproduced: the code's extra
one-dimensional noise input to G. The step is the base class's, so the losses see the noise z of
the batch's fakes through `draw_noise`, which keeps the latest draw. No packing, no regularizer
terms (D judges pairs; GradientPenalty and R1 differentiate a D of x alone).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.gans.module import GANModule

__all__ = ["VEEGANModule"]


class VEEGANModule(GANModule):
    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 reconstructor: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 100,
                 reconstructor_std: float = 1.0, **kwargs):
        if kwargs.get("pack", 1) != 1:
            raise ValueError(f"model.pack={kwargs['pack']}: VEEGAN's discriminator judges single (z, x) "
                             "pairs; set model.pack=1")
        if kwargs.get("regularizers"):
            raise ValueError("model.regularizers: VEEGAN takes no regularizer terms; set model.regularizers=[]")

        def joint(data_shape):  # D's input: the noise and the flattened example side by side
            return discriminator(data_shape=(latent_dim + math.prod(data_shape),))

        super().__init__(generator, joint, None, data, optimizer, latent_dim, **kwargs)
        self.reconstructor = reconstructor(in_features=self.num_dims, out_features=latent_dim)
        self.reconstructor_std = reconstructor_std
        self.noise_batch: torch.Tensor | None = None

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The latent batch, kept as `noise_batch`: the base step passes only G(z) to the losses."""
        self.noise_batch = super().draw_noise(n, generator)
        return self.noise_batch

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): examples -> noise space."""
        return self.reconstructor(x.flatten(1))

    def critic_pairs(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """D's logit for each (z, x) pair; high for the generator's pairs."""
        return self.discriminator(torch.cat([z, x.flatten(1)], dim=1))

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # the reconstructor's pairs train D only
            z_real = self.reconstruct(real)
            z_real = z_real + self.reconstructor_std * torch.randn_like(z_real)
        loss = (F.softplus(-self.critic_pairs(self.noise_batch, fake.detach())).mean()
                + F.softplus(self.critic_pairs(z_real, real)).mean())
        return {"train/d_loss": loss}

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.noise_batch
        return {"train/g_loss": self.critic_pairs(z, fake).mean(),
                "train/reconstruction": (z - self.reconstruct(fake)).pow(2).sum(dim=1).mean()}

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.generator.parameters(), self.reconstructor.parameters())
