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
samples at once). Variants whose losses differ subclass it and change loss terms, never the loop:

    discriminator_loss(batch: GANBatch) -> Losses     generator_loss(batch: GANBatch) -> Losses
    after_step(d: Losses, g: Losses | None) -> dict   (statistics to log; BEGAN updates k_t here)
    critic(x, labels)  generate(noise, labels)  generator_parameters()
    judges_single_examples = "why"                     (a D that refuses packing says why)

A `GANBatch` is everything a step's losses read: the data batch, the fakes G(noise, labels), G's
noise, the batch's labels and its further parts (SSGAN's labelled batch). `Losses.terms` are summed
into what the network's optimizer minimises; `Losses.stats` are only logged (an accuracy, a bound).

Every variant can keep an exponential moving average of its generator (`model.ema_decay` or
`model.ema_half_life_kimg`, gans/ema.py): updated after each generator step (`update_ema`), saved
beside the raw weights, sampled from by the progress grids and in-training metrics while training,
and by eval and sample (`use_weights`).
"""
from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from gen_runner.base import GenerativeModule
from gen_runner.capabilities import eval_metric
from gen_runner.data.images import from_gan_range, to_gan_range
from gen_runner.errors import UserError
from gen_runner.gans.ema import GeneratorEMA, ema_schedule, swapped
from gen_runner.gans.objectives import Objective
from gen_runner.gans.regularizers import apply_spectral_norm
from gen_runner.metrics.modes import mode_metrics

__all__ = ["GANModule", "GANBatch", "Losses", "packed_shape"]


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """What a PacGAN discriminator sees: `pack` examples joined along features or channels."""
    return (data_shape[0] * pack, *data_shape[1:])


@dataclass
class GANBatch:
    """What one training step's losses read, in model space: the data `real`, the fakes
    G(noise, labels) made for it, G's input `noise`, the batch's `labels` (None when the data has
    none) and the batch's further parts `extra` as the loader delivered them (SSGAN: x_labelled,
    y_labelled). Conditional variants judge real and fake with the same labels."""

    real: torch.Tensor
    fake: torch.Tensor
    noise: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    extra: tuple[torch.Tensor, ...] = ()


@dataclass
class Losses:
    """A network's loss in one step: `terms` are summed into what its optimizer minimises, and each
    is logged (`train/d_loss`, `train/d_GradientPenalty`, ...); `stats` are only logged (detached),
    or read by `after_step` (e.g. `train/d_real_acc`, `train/mi_bound`)."""

    terms: dict[str, torch.Tensor]
    stats: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def total(self) -> torch.Tensor:
        return sum(self.terms.values())

    def logs(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in (self.terms | self.stats).items()}


class GANModule(GenerativeModule):
    family = "gan"
    # Why this variant's discriminator must judge one example at a time, if it must: PacGAN's
    # packing (model.pack > 1) is then refused, with this reason, when the module is built.
    judges_single_examples: str | None = None
    truncation_means = ("threshold t (with Gaussian noise, model.latent=normal): each noise value drawn from N(0, 1) "
                        "truncated to [-t, t], values beyond resampled (BigGAN); smaller t, less variety")

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
        ema_decay: float | None = None,
        ema_half_life_kimg: float | None = None,
        ema_warmup: bool = True,
        compile: bool = False,
    ):
        super().__init__(data, optimizer)
        self.compile_nets = compile  # torch.compile G's and D's forward for training (weights' names unchanged)
        if latent not in ("normal", "uniform"):
            raise ValueError(f"model.latent={latent!r}: choose normal or uniform")
        if pack < 1:
            raise ValueError(f"model.pack={pack}: pack at least one sample")
        if pack > 1 and self.judges_single_examples:
            raise ValueError(f"model.pack={pack}: {self.judges_single_examples}; set model.pack=1")
        batch_size = data.get("batch_size")  # the training batch (data/datamodule.py's describe())
        if pack > 1 and batch_size and batch_size % pack:
            below = batch_size - batch_size % pack
            raise UserError(f"model.pack={pack} needs data.batch_size divisible by {pack}, got {batch_size}: "
                            f"set data.batch_size={below or pack}" + (f" or {below + pack}" if below else ""))
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
        self.ema_schedule = ema_schedule(ema_decay, ema_half_life_kimg, ema_warmup)  # None: no EMA
        # Built when fit sets up (or a checkpoint holding one is loaded): subclasses may still change
        # the generator after this constructor (spectral norm, ...), and the copy must match it.
        self.generator_ema: GeneratorEMA | None = None

    # -- data space <-> model space ---------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Images: discrete pixel values -> [-1, 1]; points unchanged."""
        return to_gan_range(x.float(), self.num_levels) if self.is_image else x

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(n, self.latent_dim, generator=generator, uniform=self.latent == "uniform")

    @property
    def gaussian_noise(self) -> bool:
        return self.latent == "normal"

    def check_truncation(self, value: float) -> None:
        if not self.gaussian_noise:
            raise UserError(f"truncation={value}: this GAN draws uniform noise (model.latent={self.latent}); "
                            "the truncation trick needs model.latent=normal: drop truncation=")
        super().check_truncation(value)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G's output in model space; conditional variants generate for `labels` (one per row)."""
        return self.generator(noise)

    # -- the generator's moving average (gans/ema.py) ------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.attach_ema()
            if self.compile_nets:
                self.generator.compile()
                self.discriminator.compile()

    def attach_ema(self) -> None:
        if self.ema_schedule is not None and self.generator_ema is None:
            self.generator_ema = GeneratorEMA(self.generator, self.ema_schedule)

    def update_ema(self, batch_size: int) -> None:
        """After a generator step on `batch_size` fakes: the EMA (if any) takes the new weights in."""
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, batch_size)

    @contextlib.contextmanager
    def ema_weights(self):
        """Inside the block the generator holds its EMA's weights, if it has an EMA that has averaged."""
        if self.generator_ema is None or not self.generator_ema.n_averaged:
            yield
            return
        with swapped(self.generator, self.generator_ema.module):
            yield

    def sample_batches(self, *args, **kwargs):
        """As GenerativeModule's, from the EMA generator while training with one (progress grids and
        in-training metrics, as StyleGAN's code draws its snapshots from G_ema)."""
        with self.ema_weights():
            yield from super().sample_batches(*args, **kwargs)

    def use_weights(self, which: str) -> str:
        """eval and sample: the generator keeps its EMA's weights (`which="ema"`, where it has an EMA)
        or its raw ones ("raw"); the EMA copy is dropped. Returns which weights the generator holds."""
        ema, self.generator_ema = self.generator_ema, None
        if which == "ema" and ema is not None and ema.n_averaged:
            self.generator.load_state_dict(ema.module.state_dict())
            return "ema"
        return "raw"

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Also the EMA's entries (`generator_ema.*`): an EMA is built to take them. Resuming with the
        EMA switched on from a checkpoint without one starts it afresh; switched off, it is dropped."""
        prefix = "generator_ema."
        held = any(k.startswith(prefix) for k in state_dict)
        self.attach_ema()
        if held != (self.generator_ema is not None):
            metadata = getattr(state_dict, "_metadata", None)
            state_dict = collections.OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith(prefix))
            if self.generator_ema is not None:
                state_dict.update((prefix + k, v) for k, v in self.generator_ema.state_dict().items())
            if metadata is not None:
                state_dict._metadata = metadata
        return super().load_state_dict(state_dict, strict, assign)

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.generate(noise, labels)
        return (from_gan_range(x, self.num_levels) / (self.num_levels - 1)).clamp(0, 1) if self.is_image else x

    @eval_metric("modes, high_quality_pct, reverse_kl (2,500 samples, as PacGAN/VEEGAN)",
                 needs="2-D Gaussian-mixture data: ring8, grid25, gauss8")
    def modes(self, ctx):
        return mode_metrics(ctx)

    # -- what the discriminator sees -----------------------------------------------------------
    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """[B, ...] -> [B / pack, pack * first dim, ...]: consecutive examples judged together."""
        if self.pack == 1:
            return x
        if len(x) % self.pack:
            raise UserError(f"model.pack={self.pack} needs a batch size divisible by {self.pack}; "
                            f"got {len(x)}: set data.batch_size to a multiple")
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def critic(self, x_packed: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's logit of already packed input (what regularizers differentiate);
        conditional variants judge it with `labels`."""
        return self.discriminator(x_packed)

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        """The objective plus the discriminator's regularizers; D judges packed batches."""
        real, fake, y = self.packed(batch.real), self.packed(batch.fake.detach()), batch.labels
        terms = {"train/d_loss": self.objective.d_loss(self.critic(real, y), self.critic(fake, y))}
        return Losses(terms | self.regularizer_terms("discriminator", real, fake, y))

    def generator_loss(self, batch: GANBatch) -> Losses:
        """The objective plus the generator's regularizers (D's weights get no gradient)."""
        real, fake, y = self.packed(batch.real), self.packed(batch.fake), batch.labels
        terms = {"train/g_loss": self.objective.g_loss(self.critic(fake, y))}
        return Losses(terms | self.regularizer_terms("generator", real, fake, y))

    def regularizer_terms(self, net: str, real: torch.Tensor, fake: torch.Tensor,
                          labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The regularizer terms joining `net`'s loss, on packed batches: `train/d_<name>`, `train/g_<name>`.
        They differentiate the critic at the step's labels."""
        critic = functools.partial(self.critic, labels=labels)
        return {f"train/{net[0]}_{type(reg).__name__}": reg(self, real, fake, critic) for reg in self.regularizers
                if reg.net == net}

    def after_step(self, d: Losses, g: Losses | None) -> dict[str, torch.Tensor]:
        """Runs once the batch's steps are taken, with the losses they minimised (`g` is None on a
        batch without a generator step); returns further statistics to log. BEGAN updates k_t here."""
        return {}

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

    def gan_batch(self, batch: Sequence[torch.Tensor]) -> GANBatch:
        """A loader's batch (data, labels, further parts) -> what the step's losses read: the data in
        model space, and fakes from fresh noise for the batch's labels. Image-to-image variants read
        their (input, target) pairs here."""
        labels = batch[1] if len(batch) > 1 else None
        real = self.preprocess(batch[0])
        noise = self.draw_noise(len(real))
        return GANBatch(real, self.generate(noise, labels), noise, labels, tuple(batch[2:]))

    def training_step(self, batch, batch_idx: int):
        inputs = self.gan_batch(batch)
        opt_g, opt_d = self.optimizers()
        take_g_step = self.generator_turn()
        g = None

        if take_g_step and self.simultaneous:  # G's gradient from the discriminator before its step
            g = self._generator_backward(opt_g, inputs)
        d = self.discriminator_loss(inputs)
        self.backprop(opt_d, d.total)
        self.step(opt_d, counted=True)
        self.clip_weights()
        if take_g_step:
            if not self.simultaneous:
                g = self._generator_backward(opt_g, inputs)
            self.step(opt_g, counted=False)
            self.update_ema(len(inputs.fake))

        logs = d.logs() | (g.logs() if g else {}) | {k: v.detach() for k, v in self.after_step(d, g).items()}
        self.log_dict(logs, prog_bar=True)
        return logs

    def _generator_backward(self, opt_g, inputs: GANBatch) -> Losses:
        self.discriminator.requires_grad_(False)  # no weight gradients for D in G's backward
        try:
            g = self.generator_loss(inputs)
            self.backprop(opt_g, g.total)
        finally:
            self.discriminator.requires_grad_(True)
        return g
