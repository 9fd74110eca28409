"""The adversarial LightningModule every GAN variant builds on.

Manual optimization: each batch takes one discriminator step and, every `n_critic` batches, one
generator step on the same fake batch. Lightning's `global_step` counts optimizer steps under
manual optimization; only the discriminator step is counted here (the generator step goes to the
strategy directly, with the same precision and distributed handling), so one step is one batch:
`trainer.max_steps`, checkpoint intervals and every TensorBoard x-axis mean batches.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gen_runner.base import GenerativeModule
from gen_runner.data.images import from_gan_range, to_gan_range
from gen_runner.gans.objectives import Objective

__all__ = ["GANModule"]


class GANModule(GenerativeModule):
    family = "gan"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        objective: Objective,
        data: dict,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        latent_dim: int = 100,
        latent: str = "normal",
        n_critic: int = 1,
        lr_g: float | None = None,
        lr_d: float | None = None,
    ):
        super().__init__(data, optimizer)
        if latent not in ("normal", "uniform"):
            raise ValueError(f"model.latent={latent!r}: choose normal or uniform")
        self.automatic_optimization = False
        self.latent_dim, self.latent, self.n_critic = latent_dim, latent, n_critic
        self.lr_g, self.lr_d = lr_g, lr_d
        self.generator = generator(latent_dim=latent_dim, data_shape=self.data_shape)
        self.discriminator = discriminator(data_shape=self.data_shape)
        self.objective = objective

    # -- data space <-> model space ---------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Images: discrete pixel values -> [-1, 1]; points unchanged."""
        return to_gan_range(x.float(), self.num_levels) if self.is_image else x

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(n, self.latent_dim, generator=generator, uniform=self.latent == "uniform")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        x = self.generator(noise)
        return (from_gan_range(x, self.num_levels) / (self.num_levels - 1)).clamp(0, 1) if self.is_image else x

    # -- training ----------------------------------------------------------------------------
    def configure_optimizers(self):
        def build(params, lr):
            return self.optimizer_factory(params) if lr is None else self.optimizer_factory(params, lr=lr)

        return build(self.generator.parameters(), self.lr_g), build(self.discriminator.parameters(), self.lr_d)

    def update(self, optimizer, loss: torch.Tensor, counted: bool) -> None:
        """Backward and step; `counted` steps advance `global_step` (one per batch)."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if counted:
            optimizer.step()
        else:
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    def generator_turn(self) -> bool:
        """Whether this batch ends with a generator step: after every n_critic discriminator steps."""
        return (self.global_step + 1) % self.n_critic == 0

    def training_step(self, batch, batch_idx: int):
        x = self.preprocess(batch[0])
        opt_g, opt_d = self.optimizers()
        take_g_step = self.generator_turn()
        fake = self.generator(self.draw_noise(len(x)))

        d_loss = self.objective.d_loss(self.discriminator(x), self.discriminator(fake.detach()))
        self.update(opt_d, d_loss, counted=True)
        losses = {"train/d_loss": d_loss.detach()}

        if take_g_step:
            self.discriminator.requires_grad_(False)  # no weight gradients for D in G's backward
            g_loss = self.objective.g_loss(self.discriminator(fake))
            self.update(opt_g, g_loss, counted=False)
            self.discriminator.requires_grad_(True)
            losses["train/g_loss"] = g_loss.detach()

        self.log_dict(losses, prog_bar=True)
        return losses
