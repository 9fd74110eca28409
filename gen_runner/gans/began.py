"""BEGAN (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium Generative Adversarial
Networks").

The discriminator D is an autoencoder (gen_runner/nets/autoencoder.py) and every loss is its
reconstruction error L(v) = |v - D(v)|, the L1 norm (eta = 1) averaged over the example:

    L_D = L(x) - k_t L(G(z))        L_G = L(G(z))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)                       (sec. 3.4)

k_t steers training towards the equilibrium E[L(G(z))] = gamma E[L(x)], where the diversity ratio
gamma trades diversity (high) for quality (low) (sec. 3.3). The convergence measure
M_global = L(x) + |gamma L(x) - L(G(z))| (sec. 3.4.1) is logged as train/m_global, k_t as train/k,
L(x) and L(G(z)) as train/l_real and train/l_fake. k_t is a buffer, so checkpoints keep it and a
resumed run continues from it.

Defaults, from the paper: gamma 0.5 (fig. 2 shows 0.3, 0.5 and 0.7), lambda_k 0.001, k_0 = 0
(sec. 3.4), z ~ U(-1, 1)^64 (N_z = 64, sec. 3.5 and 4.1), Adam for both nets with lr 1e-4, the top
of the paper's initial range [5e-5, 1e-4] (sec. 4.1). The paper gives no betas; (0.5, 0.999)
as in common reimplementations.

Each batch takes one discriminator step (the counted one) and then one generator step on the same
G(z), so z_D = z_G: GANModule's loop, with these losses. k_t is updated after both steps
(`after_step`), from L(x) and L(G(z)) as the discriminator's step measured them (its loss's
statistics: one D for both). Deviation: the paper halves the learning rate when M_global
stalls (sec. 4.1); here the learning rate is constant.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gen_runner.gans.module import GANBatch, GANModule, Losses

__all__ = ["BEGANModule"]


class BEGANModule(GANModule):
    """A GAN with an autoencoder discriminator, trained with BEGAN's losses and k_t. It takes no
    objective; of GANModule's options it supports latent_dim, latent, lr_g, lr_d, grad_clip, compile and
    the generator EMA (ema_decay, ema_half_life_kimg, ema_warmup)."""

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        data: dict,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        gamma: float = 0.5,
        lambda_k: float = 1e-3,
        k_0: float = 0.0,
        latent_dim: int = 64,
        latent: str = "uniform",
        lr_g: float | None = None,
        lr_d: float | None = None,
        grad_clip: float | None = None,
        ema_decay: float | None = None,
        ema_half_life_kimg: float | None = None,
        ema_warmup: bool = True,
        compile: bool = False,
    ):
        super().__init__(generator, discriminator, None, data, optimizer, latent_dim=latent_dim, latent=latent,
                         lr_g=lr_g, lr_d=lr_d, grad_clip=grad_clip, ema_decay=ema_decay,
                         ema_half_life_kimg=ema_half_life_kimg, ema_warmup=ema_warmup, compile=compile)
        if not 0 <= k_0 <= 1:
            raise ValueError(f"model.k_0={k_0}: k_t lies in [0, 1]")
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.tensor(float(k_0)))

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """L(v) = mean |v - D(v)| over each example's entries, averaged over the batch."""
        return (v - self.discriminator(v)).abs().mean()

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        """L_D = L(x) - k_t L(G(z)); L(x) and L(G(z)) are its statistics, for k_t's update."""
        loss_real, loss_fake = self.reconstruction_error(batch.real), self.reconstruction_error(batch.fake.detach())
        return Losses({"train/d_loss": loss_real - self.k * loss_fake},
                      {"train/l_real": loss_real, "train/l_fake": loss_fake})

    def generator_loss(self, batch: GANBatch) -> Losses:
        return Losses({"train/g_loss": self.reconstruction_error(batch.fake)})

    @torch.no_grad()
    def update_k(self, loss_real: torch.Tensor, loss_fake: torch.Tensor) -> torch.Tensor:
        """k_t <- clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1); returns M_global."""
        balance = self.gamma * loss_real - loss_fake
        self.k.add_(self.lambda_k * balance).clamp_(0, 1)
        return loss_real + balance.abs()

    def after_step(self, d: Losses, g: Losses | None) -> dict[str, torch.Tensor]:
        m_global = self.update_k(d.stats["train/l_real"], d.stats["train/l_fake"])
        return {"train/k": self.k.clone(), "train/m_global": m_global}
