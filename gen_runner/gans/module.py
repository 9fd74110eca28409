"""The adversarial LightningModule every GAN variant builds on.

Manual optimization: each batch takes one discriminator step and, every `n_critic` batches, one
generator step on the same fake batch: after the discriminator's step (alternating, as DCGAN and
most code), or with both gradients taken before either step (`simultaneous`, as PacGAN's and
ALI's code). Lightning's `global_step` counts optimizer steps under manual optimization; only the
discriminator step is counted here (the generator step goes to the strategy directly, with the
same precision and distributed handling), so one step is one batch: `trainer.max_steps`,
checkpoint intervals and every TensorBoard x-axis mean batches.

Variants that change only the loss or a regularizer are configs of this class: an objective
(gans/objectives.py), regularizer terms, spectral norm, weight or gradient clipping
(gans/regularizers.py), packing (PacGAN, Lin et al. 2018: the discriminator judges `pack`
samples at once). Variants whose step differs subclass it and override `generator_loss`,
`generator_parameters` or `training_step`. The step keeps the batch's labels, if the data has
any, as `batch_labels` and makes its fakes with `generate(noise, labels)`: conditional variants
(gans/conditional.py) generate and judge with them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from gen_runner.base import GenerativeModule
from gen_runner.data.images import from_gan_range, to_gan_range
from gen_runner.errors import UserError
from gen_runner.gans.objectives import Objective
from gen_runner.gans.regularizers import apply_spectral_norm

__all__ = ["GANModule", "packed_shape"]


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """What a PacGAN discriminator sees: `pack` examples joined along features or channels."""
    return (data_shape[0] * pack, *data_shape[1:])


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
        pack: int = 1,
        simultaneous: bool = False,
        regularizers: Sequence[Callable] = (),
        spectral_norm: bool = False,
        weight_clip: float | None = None,
        grad_clip: float | None = None,
    ):
        super().__init__(data, optimizer)
        if latent not in ("normal", "uniform"):
            raise ValueError(f"model.latent={latent!r}: choose normal or uniform")
        if pack < 1:
            raise ValueError(f"model.pack={pack}: pack at least one sample")
        self.automatic_optimization = False
        self.latent_dim, self.latent, self.n_critic = latent_dim, latent, n_critic
        self.lr_g, self.lr_d = lr_g, lr_d
        self.pack, self.simultaneous = pack, simultaneous
        self.regularizers = list(regularizers)
        self.weight_clip, self.grad_clip = weight_clip, grad_clip
        self.generator = generator(latent_dim=latent_dim, data_shape=self.data_shape)
        self.discriminator = discriminator(data_shape=packed_shape(self.data_shape, pack))
        if spectral_norm:
            apply_spectral_norm(self.discriminator)
        self.objective = objective
        self.batch_labels: torch.Tensor | None = None  # the training batch's labels, for variants that use them

    # -- data space <-> model space ---------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Images: discrete pixel values -> [-1, 1]; points unchanged."""
        return to_gan_range(x.float(), self.num_levels) if self.is_image else x

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(n, self.latent_dim, generator=generator, uniform=self.latent == "uniform")

    @property
    def gaussian_noise(self) -> bool:
        return self.latent == "normal"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G's output in model space; conditional variants generate for `labels` (one per row)."""
        return self.generator(noise)

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.generate(noise, labels)
        return (from_gan_range(x, self.num_levels) / (self.num_levels - 1)).clamp(0, 1) if self.is_image else x

    # -- what the discriminator sees -----------------------------------------------------------
    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [B / pack, pack * first dim, ...]: consecutive examples judged together."""
        if self.pack == 1:
            return x
        if len(x) % self.pack:
            raise UserError(f"model.pack={self.pack} needs a batch size divisible by {self.pack}; "
                            f"got {len(x)}: set data.batch_size to a multiple")
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def critic(self, x_packed: torch.Tensor) -> torch.Tensor:
        """The discriminator on already packed input (what regularizers differentiate)."""
        return self.discriminator(x_packed)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective plus the discriminator's regularizers, on unpacked batches."""
        real, fake = self.packed(real), self.packed(fake.detach())
        terms = {"train/d_loss": self.objective.d_loss(self.critic(real), self.critic(fake))}
        return terms | self.regularizer_terms("discriminator", real, fake)

    def generator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective plus the generator's regularizers (D's weights get no gradient)."""
        terms = {"train/g_loss": self.objective.g_loss(self.critic(self.packed(fake)))}
        return terms | self.regularizer_terms("generator", self.packed(real), self.packed(fake))

    def regularizer_terms(self, net: str, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """The regularizer terms joining `net`'s loss, on packed batches: `train/d_<name>`, `train/g_<name>`."""
        return {f"train/{net[0]}_{type(reg).__name__}": reg(self, real, fake) for reg in self.regularizers
                if reg.net == net}

    # -- training ----------------------------------------------------------------------------
    def generator_parameters(self) -> Iterable[nn.Parameter]:
        """What the generator's optimizer updates (BiGAN and VEEGAN add their encoder)."""
        return self.generator.parameters()

    def configure_optimizers(self):
        def build(params, lr):
            return self.optimizer_factory(params) if lr is None else self.optimizer_factory(params, lr=lr)

        return build(self.generator_parameters(), self.lr_g), build(self.discriminator.parameters(), self.lr_d)

    def backprop(self, optimizer, loss: torch.Tensor) -> None:
        """Fresh gradients of `loss` for `optimizer`'s parameters, clipped if asked."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    def step(self, optimizer, counted: bool) -> None:
        """An optimizer step; `counted` steps advance `global_step` (one per batch)."""
        if counted:
            optimizer.step()
        else:
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    def clip_weights(self) -> None:
        if self.weight_clip is not None:  # WGAN's crude Lipschitz constraint, after every critic step
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.weight_clip, self.weight_clip)

    def generator_turn(self) -> bool:
        """Whether this batch ends with a generator step: after every n_critic discriminator steps."""
        return (self.global_step + 1) % self.n_critic == 0

    def training_step(self, batch, batch_idx: int):
        real = self.preprocess(batch[0])
        self.batch_labels = batch[1] if len(batch) > 1 else None
        opt_g, opt_d = self.optimizers()
        take_g_step = self.generator_turn()
        fake = self.generate(self.draw_noise(len(real)), self.batch_labels)
        logs = {}

        if take_g_step and self.simultaneous:  # G's gradient from the discriminator before its step
            logs |= self._generator_backward(opt_g, real, fake)
        d_terms = self.discriminator_loss(real, fake)
        self.backprop(opt_d, sum(d_terms.values()))
        self.step(opt_d, counted=True)
        self.clip_weights()
        logs |= d_terms
        if take_g_step:
            if not self.simultaneous:
                logs |= self._generator_backward(opt_g, real, fake)
            self.step(opt_g, counted=False)

        logs = {k: v.detach() for k, v in logs.items()}
        self.log_dict(logs, prog_bar=True)
        return logs

    def _generator_backward(self, opt_g, real, fake) -> dict[str, torch.Tensor]:
        self.discriminator.requires_grad_(False)  # no weight gradients for D in G's backward
        try:
            g_terms = self.generator_loss(real, fake)
            self.backprop(opt_g, sum(g_terms.values()))
        finally:
            self.discriminator.requires_grad_(True)
        return g_terms
