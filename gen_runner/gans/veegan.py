"""VEEGAN (Srivastava, Valkov, Russell, Gutmann & Sutton 2017, "VEEGAN: Reducing Mode Collapse in
GANs using Implicit Variational Learning").

A reconstructor F maps data back to the noise, and the discriminator D(z, x) judges (noise, data)
pairs: BiGAN's layout (gans/bigan.py: F is its encoder, D its joint discriminator, by default an
MLP on [z, flattened x]) with other losses. Signs as in the paper's Algorithm 1 and the authors'
code:

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
one-dimensional noise input to G. As BiGAN: no packing, no regularizer terms.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.gans.bigan import BiGANModule
from gen_runner.gans.module import GANBatch, Losses

__all__ = ["VEEGANModule"]


class VEEGANModule(BiGANModule):
    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 reconstructor: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 100,
                 reconstructor_std: float = 1.0, **kwargs):
        super().__init__(generator, discriminator, reconstructor, None, data, optimizer, latent_dim, **kwargs)
        self.reconstructor_std = reconstructor_std

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        with torch.no_grad():  # the reconstructor's pairs train D only
            z_real = self.encode(batch.real)
            z_real = z_real + self.reconstructor_std * torch.randn_like(z_real)
        loss = (F.softplus(-self.pair_logits(batch.fake.detach(), batch.noise)).mean()
                + F.softplus(self.pair_logits(batch.real, z_real)).mean())
        return Losses({"train/d_loss": loss})

    def generator_loss(self, batch: GANBatch) -> Losses:
        z, fake = batch.noise, batch.fake
        return Losses({"train/g_loss": self.pair_logits(fake, z).mean(),
                       "train/reconstruction": (z - self.encode(fake)).pow(2).sum(dim=1).mean()})
