"""ProGAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation").

G and D grow from 4x4 to the data's side (gen_runner/nets/progan.py) on the schedule of
gen_runner/gans/growing.py: a stabilising phase at 4x4, then per doubling a fade-in, with the new
blocks' weight alpha rising linearly in images shown, and a stabilising phase (`model.schedule`).
The loss is WGAN-GP (the Wasserstein objective + `GradientPenalty`, lambda 10) plus the drift term
epsilon * E[D(x)^2], epsilon 0.001 (sec. A.1), with one critic step per generator step and
Adam(lr 1e-3, betas (0, 0.99)); equalized learning rate, pixel norm and the minibatch-stddev layer
are in the nets. TensorBoard shows `train/resolution` and `train/alpha` of each step.

The phase is a function of `images_shown`, a buffer of this module: it lives in every checkpoint,
so a resume continues at the same resolution and alpha (mid-fade included), and `eval`/`sample`
generate at the phase the checkpoint reached (upsampled to the data's side, nearest neighbour, as
the official code's output). The real images of a step are box-filtered down to the phase's
resolution (average pooling, as the official code's lower levels of detail) and, during a fade-in,
blended with their own 2x coarser version upsampled, alpha x + (1 - alpha) up(down(x)), as G's
output is blended (sec. A.1 and the code's `process_reals`).

Per-resolution batch sizes (`model.schedule.batch_sizes`, resolution -> size; others
`data.batch_size`): the loader always delivers `data.batch_size` examples, which must be the
largest size, and a step uses the first b(resolution) of them, so each step's batch is exactly
b(resolution) images in a seeded order, on every resume; each step adds b(resolution) times the
number of processes to `images_shown`. The schedule counts the images D is shown, as the code's
`cur_nimg`.

Optimizer state on growing: the official code resets both Adams' moments and step counts whenever
the level of detail enters a new phase (`reset_opt_for_new_lod=True`: at the start of each
fade-in and of each stabilising phase); so does this module, after the step that ends a phase.
Deviations: a step's fakes serve both D's and G's loss (the code draws new latents for G);
learning rates stay 1e-3 at every resolution (as the paper; the code's later presets raise it at
1024); the minibatch-stddev statistic is over the whole minibatch (as the paper's sec. 3; the
code's groups of 4 to 16); the schedule is read every step (the code: every 4 minibatches). The
generator EMA (beta 0.999) is every GAN's (gans/ema.py, `model.ema_decay`), with the project's
warm-up (`model.ema_warmup=false`: the code's fixed beta from the start).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gen_runner.errors import UserError
from gen_runner.gans.growing import GrowingSchedule, Phase
from gen_runner.gans.module import GANBatch, GANModule, Losses
from gen_runner.nets.progan import upsample

__all__ = ["ProGAN"]


class ProGAN(GANModule):
    judges_single_examples = ("ProGAN's discriminator judges single images at each resolution, and its "
                              "per-resolution batch sizes are not kept divisible by a pack")
    schedule_key = "model.schedule"  # where the growing schedule's options live, for error messages

    def __init__(self, *args, data: dict, schedule: dict | None = None, drift: float = 0.001, **kwargs):
        shape = tuple(data["shape"])
        if len(shape) != 3 or shape[1] != shape[2]:
            raise UserError(f"model=progan grows square images; the data has shape {shape}: use image data "
                            "(digits, mnist with data.size=32, image_folder)")
        if not drift >= 0:
            raise UserError(f"model.drift={drift}: pass a weight >= 0 (the paper's 0.001)")
        batch_size = data.get("batch_size")
        growing = GrowingSchedule(shape[1], **{"batch_size": batch_size or 16, **(schedule or {})},
                                  key=self.schedule_key)
        largest = max(growing.batch_size_at(r) for r in growing.resolutions)
        if batch_size is not None and largest > batch_size:
            raise UserError(f"{self.schedule_key}.batch_sizes asks for {largest} images a step and data.batch_size="
                            f"{batch_size}: a step uses the first b(resolution) of each data batch; set "
                            f"data.batch_size={largest}")
        super().__init__(*args, data=data, **kwargs)
        self.schedule, self.drift = growing, drift
        self.register_buffer("images_shown", torch.zeros((), dtype=torch.long))

    @property
    def phase(self) -> Phase:
        return self.schedule.phase(int(self.images_shown))

    # -- generating and judging at the phase's resolution --------------------------------------
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(z)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G at the current phase, upsampled to the data's side: what `sample` and `eval` see."""
        phase = self.phase
        out = self.generator(noise, phase.resolution, phase.alpha)
        return upsample(out, self.schedule.final_resolution // phase.resolution)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator(x, self.phase.alpha)

    def real_images(self, x: torch.Tensor, phase: Phase) -> torch.Tensor:
        """Real images in model space -> the phase's resolution, blended across a fade-in as G's output."""
        factor = self.schedule.final_resolution // phase.resolution
        x = F.avg_pool2d(x, factor) if factor > 1 else x
        return torch.lerp(upsample(F.avg_pool2d(x, 2)), x, phase.alpha) if phase.fading else x

    # -- the step ------------------------------------------------------------------------------
    def gan_batch(self, batch: Sequence[torch.Tensor]) -> GANBatch:
        phase = self.phase
        real = self.real_images(self.preprocess(batch[0][: phase.batch_size]), phase)
        noise = self.draw_noise(len(real))
        return GANBatch(real, self.generator(noise, phase.resolution, phase.alpha), noise)

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        """WGAN-GP's critic loss plus the drift term epsilon * E[D(x)^2] (it keeps D's scores near 0)."""
        real, fake = batch.real, batch.fake.detach()
        real_scores = self.critic(real)
        terms = {"train/d_loss": self.objective.d_loss(real_scores, self.critic(fake)),
                 "train/d_drift": self.drift * real_scores.pow(2).mean()}
        return Losses(terms | self.regularizer_terms("discriminator", real, fake))

    def after_step(self, d: Losses, g: Losses | None) -> dict[str, torch.Tensor]:
        """Counts the step's images; a new phase starts with fresh optimizer state (the official code)."""
        phase = self.phase
        self.images_shown += phase.batch_size * self.trainer.world_size
        if self.phase.index != phase.index:
            for optimizer in self.optimizers():
                optimizer.optimizer.state.clear()
        return {"train/resolution": torch.tensor(float(phase.resolution)), "train/alpha": torch.tensor(phase.alpha)}
