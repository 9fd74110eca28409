"""StyleGAN (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for Generative
Adversarial Networks") and StyleGAN2 (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020,
"Analyzing and Improving the Image Quality of StyleGAN"), `model.version=1|2`.

The nets are gen_runner/nets/stylegan.py's (the mapping network, the learned constant, AdaIN or
modulated convolutions, per-layer noise); version 1's discriminator is ProGAN's. The training:
- The non-saturating logistic loss (`model/objective=standard`) with R1 on the reals (gamma
  `model.r1_gamma`, gen_runner/gans/regularizers.py's R1), every minibatch (version 1) or lazily
  every `model.r1_interval` = 16 minibatches with the term multiplied by the interval (StyleGAN2
  sec. 3.1).
- Style-mixing regularization (StyleGAN sec. 3.1): in `model.style_mixing` (90%) of the batches,
  two latents are mapped and the styles switch from the first's w to the second's at a crossover
  layer drawn uniformly from 1 .. (active layers - 1), one per batch as the official code.
- The mean w (`generator.w_avg`), tracked as a moving average of the batches' w with beta
  `model.w_avg_beta` = 0.995; truncation in W toward it, w' = w_avg + psi (w - w_avg), in the
  layers below `model.truncation_cutoff` (all if null), through `truncation=psi` (base.py's
  `truncated` session; psi in [0, 1]).
- Path-length regularization (StyleGAN2 sec. 3.2, version 2's default): every
  `model.path_length_interval` = 4 minibatches, on half a batch, weight `model.path_length_weight`
  = 2 times the interval: (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(pixels) and a the running
  mean of the lengths (decay 0.01).
- The schedule: progressive growing (version 1, `model.schedule=progressive`, from 8x8 with
  600k images per fade-in and stabilising phase as StyleGAN's code; ProGAN's module, which this
  subclasses, gives the phases, the resume in mid-fade and the reals at the phase's resolution)
  or a fixed full resolution (`model.schedule=fixed`, version 2's only choice).
- The mapping network's 100x lower learning rate (`model.mapping_lr_multiplier` = 0.01): a
  parameter group of G's optimizer, so the rate shows in the optimizer (with Adam the same
  effective step as the code's runtime lr multiplier).

Sampling uses the noise inputs drawn at construction (a buffer in the checkpoint, the code's
noise_mode "const"), so a seed gives the same images; training draws fresh noise. Modes:
`mixing` (fig. 3), `truncation` (a psi sweep), `noise` (fig. 4: resampled noise and the per-pixel
standard deviation).

Deviations: the lazy regularizers join the loss of the minibatch they fall on (one optimizer step
per batch, as this runner's loop), so Adam's hyperparameters are not rescaled by
interval / (interval + 1) as in StyleGAN2's code, which takes a separate step; path-length
regularization applies style mixing like the main batch (as the code); the progressive schedule
keeps one learning rate at every resolution (StyleGAN's code raises it from 128x128); version 2's
learning rate (0.0025) is `optimizer.lr=0.0025`, which the stylegan2 presets set.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from gen_runner.capabilities import Drawn, SampleRequest, sample_mode
from gen_runner.data.images import from_gan_range
from gen_runner.errors import UserError
from gen_runner.gans.module import GANBatch, Losses
from gen_runner.gans.progan import ProGAN
from gen_runner.gans.regularizers import R1
from gen_runner.nets.progan import upsample
from gen_runner.nets.stylegan import log2_side, mix_styles, num_style_layers, style_groups, truncate_styles

__all__ = ["StyleGAN"]

# The papers' defaults that differ by version (null in the config: these).
VERSION_DEFAULTS = {1: {"schedule": "progressive", "r1_interval": 1, "path_length_weight": 0.0},
                    2: {"schedule": "fixed", "r1_interval": 16, "path_length_weight": 2.0}}


class StyleGAN(ProGAN):
    judges_single_examples = "StyleGAN's discriminators judge single images (a minibatch-stddev layer looks across them)"
    schedule_key = "model.growing"
    truncation_means = ("psi in [0, 1] (StyleGAN, in W): each w pulled toward the tracked mean w, w' = w_avg + psi "
                        "(w - w_avg), in the first model.truncation_cutoff style layers (all if null); 1: no "
                        "truncation, 0: the mean image")

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module], *args,
                 data: dict, version: int = 1, schedule: str | None = None, growing: dict | None = None,
                 style_mixing: float = 0.9, r1_gamma: float = 10.0, r1_interval: int | None = None,
                 path_length_weight: float | None = None, path_length_interval: int = 4,
                 path_length_decay: float = 0.01, w_avg_beta: float = 0.995, truncation_cutoff: int | None = None,
                 mapping_lr_multiplier: float = 0.01, latent: str = "normal", **kwargs):
        if version not in VERSION_DEFAULTS:
            raise UserError(f"model.version={version}: pass 1 (StyleGAN) or 2 (StyleGAN2)")
        defaults = VERSION_DEFAULTS[version]
        schedule = schedule or defaults["schedule"]
        if schedule not in ("progressive", "fixed"):
            raise UserError(f"model.schedule={schedule}: choose progressive or fixed")
        if version == 2 and schedule == "progressive":
            raise UserError("model.schedule=progressive: StyleGAN2 trains at full resolution (its skip G and "
                            "residual D replace growing); set model.schedule=fixed or model.version=1")
        if latent != "normal":
            raise UserError(f"model.latent={latent}: StyleGAN maps Gaussian latents; set model.latent=normal")
        for key, value in (("style_mixing", style_mixing), ("w_avg_beta", w_avg_beta),
                           ("path_length_decay", path_length_decay)):
            if not 0 <= value <= 1:
                raise UserError(f"model.{key}={value}: pass a fraction in [0, 1]")
        r1_interval = defaults["r1_interval"] if r1_interval is None else r1_interval
        path_length_weight = defaults["path_length_weight"] if path_length_weight is None else path_length_weight
        for key, value in (("r1_interval", r1_interval), ("path_length_interval", path_length_interval)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"model.{key}={value}: pass a whole number of minibatches >= 1")
        for key, value in (("r1_gamma", r1_gamma), ("path_length_weight", path_length_weight)):
            if not value >= 0:
                raise UserError(f"model.{key}={value}: pass a weight >= 0")
        if not mapping_lr_multiplier > 0:
            raise UserError(f"model.mapping_lr_multiplier={mapping_lr_multiplier}: pass a value > 0")
        side = 2 ** log2_side(data["shape"])
        growth = dict(growing or {}) if schedule == "progressive" else {"start_resolution": side}
        super().__init__(functools.partial(generator, version=version), functools.partial(discriminator, version=version),
                         *args, data=data, schedule=growth, drift=0.0, latent="normal", **kwargs)
        layers = self.generator.num_layers
        if truncation_cutoff is not None and not 1 <= truncation_cutoff <= layers:
            raise UserError(f"model.truncation_cutoff={truncation_cutoff}: this generator has {layers} style layers; "
                            f"pass 1..{layers} or null (all)")
        self.version, self.style_mixing, self.w_avg_beta = version, style_mixing, w_avg_beta
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.path_length_weight, self.path_length_interval = path_length_weight, path_length_interval
        self.path_length_decay, self.truncation_cutoff = path_length_decay, truncation_cutoff
        self.mapping_lr_multiplier = mapping_lr_multiplier
        self.register_buffer("path_length_mean", torch.zeros(()))

    # -- styles ----------------------------------------------------------------------------------
    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), never truncated: StyleGAN's truncation is in W."""
        if generator is None:
            return torch.randn(n, self.latent_dim, device=self.device)
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def check_truncation(self, value: float) -> None:
        if not 0 <= value <= 1:
            raise UserError(f"truncation={value}: StyleGAN's truncation is psi in [0, 1] (1: none, 0: the mean image)")

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """z -> ws [N, layers, w_dim], truncated toward the mean w inside `truncated(psi)`."""
        ws = self.generator.styles(z)
        if self.truncation is None:
            return ws
        return truncate_styles(ws, self.generator.w_avg, self.truncation, self.truncation_cutoff)

    def mixed_styles(self, z: torch.Tensor, resolution: int) -> torch.Tensor:
        """Training styles: w of z, tracked into the mean w; in `style_mixing` of the batches switched
        to a second latent's w from a random crossover layer on (the layers active at `resolution`)."""
        ws = self.generator.styles(z)
        self.generator.track_w_avg(ws, self.w_avg_beta)
        active = num_style_layers(resolution)
        if active > 1 and torch.rand(()) < self.style_mixing:
            crossover = int(torch.randint(1, active, ()))
            ws = mix_styles(ws, self.generator.styles(self.draw_noise(len(z))), crossover)
        return ws

    def synthesize(self, ws: torch.Tensor, noise: str | Sequence[torch.Tensor] = "fixed") -> torch.Tensor:
        """Styles -> images in model space at the phase reached, upsampled to the data's side."""
        phase = self.phase
        out = self.generator.synthesis(ws, noise, phase.resolution, phase.alpha)
        return upsample(out, self.schedule.final_resolution // phase.resolution)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesize(self.styles(noise))

    @torch.no_grad()
    def render(self, ws: torch.Tensor, noise: str | Sequence[torch.Tensor] = "fixed",
               batch_size: int | None = None) -> torch.Tensor:
        """Styles -> images in [0, 1] on the CPU, `batch_size` at a time (noise tensors sliced alike)."""
        step = batch_size or len(ws)
        out = []
        for i in range(0, len(ws), step):
            part = noise if isinstance(noise, str) else [n[i : i + step] for n in noise]
            x = self.synthesize(ws[i : i + step], part)
            out.append((from_gan_range(x, self.num_levels) / (self.num_levels - 1)).clamp(0, 1).cpu())
        return torch.cat(out)

    # -- the step ------------------------------------------------------------------------------
    def gan_batch(self, batch: Sequence[torch.Tensor]) -> GANBatch:
        phase = self.phase
        real = self.real_images(self.preprocess(batch[0][: phase.batch_size]), phase)
        noise = self.draw_noise(len(real))
        fake = self.generator.synthesis(self.mixed_styles(noise, phase.resolution), "random", phase.resolution,
                                        phase.alpha)
        return GANBatch(real, fake, noise)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().critic(x) if self.version == 1 else self.discriminator(x)

    def lazy(self, interval: int) -> bool:
        """Whether this minibatch takes a regularizer applied every `interval` minibatches."""
        return self.global_step % interval == 0

    def discriminator_loss(self, batch: GANBatch) -> Losses:
        """The logistic loss (and any `model.regularizers`), plus R1 on its minibatches, times its interval."""
        losses = super(ProGAN, self).discriminator_loss(batch)
        if self.r1_gamma > 0 and self.lazy(self.r1_interval):
            losses.terms["train/d_R1"] = self.r1_interval * R1(self.r1_gamma)(self, batch.real, batch.fake, self.critic)
        return losses

    def generator_loss(self, batch: GANBatch) -> Losses:
        losses = super().generator_loss(batch)
        if self.path_length_weight > 0 and self.lazy(self.path_length_interval):
            penalty = self.path_length_penalty(max(1, len(batch.fake) // 2))
            losses.terms["train/g_PathLength"] = self.path_length_interval * self.path_length_weight * penalty
            losses.stats["train/path_length_mean"] = self.path_length_mean.clone()
        return losses

    def path_length_penalty(self, n: int) -> torch.Tensor:
        """StyleGAN2 eq. 4 on n fresh latents: E[(||J_w^T y||_2 - a)^2], y ~ N(0, I) / sqrt(pixels), the
        running mean a updated with this batch's mean length."""
        phase = self.phase
        ws = self.mixed_styles(self.draw_noise(n), phase.resolution)
        images = self.generator.synthesis(ws, "random", phase.resolution, phase.alpha)
        y = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
        lengths = grad.pow(2).sum(2).mean(1).sqrt()
        self.path_length_mean.copy_(self.path_length_mean.lerp(lengths.mean().detach(), self.path_length_decay))
        return (lengths - self.path_length_mean).pow(2).mean()

    def configure_optimizers(self):
        """G's optimizer with the mapping network in a group of its own at `mapping_lr_multiplier` x the rate."""
        opt_g, opt_d = super().configure_optimizers()
        mapping = list(self.generator.mapping.parameters())
        main = opt_g.param_groups[0]
        main["params"] = [p for p in main["params"] if all(p is not q for q in mapping)]
        opt_g.add_param_group({"params": mapping, "lr": main["lr"] * self.mapping_lr_multiplier})
        return opt_g, opt_d

    # -- sample modes ------------------------------------------------------------------------------
    @sample_mode("StyleGAN's fig. 3: the top row holds `mode.columns` column sources, the left column `mode.rows` row "
                 "sources; each cell is its row source with the `mode.styles` (coarse: 4-8 px, middle: 16-32, fine: 64 "
                 "and up) styles of its column source (the corner is blank)")
    def mixing(self, request: SampleRequest) -> Drawn:
        opts = request.options
        groups = style_groups(self.schedule.final_resolution)
        if opts["styles"] not in groups:
            raise UserError(f"mode.styles={opts['styles']}: choose coarse, middle or fine")
        layers = groups[opts["styles"]]
        if not layers:
            have = [name for name, g in groups.items() if g]
            raise UserError(f"mode.styles={opts['styles']}: a {self.schedule.final_resolution}x"
                            f"{self.schedule.final_resolution} generator has no such layers (fine: 64x64 and up); "
                            f"choose {' or '.join(have)}")
        rows, columns = opts["rows"], opts["columns"]
        for key, value in (("rows", rows), ("columns", columns)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"mode.{key}={value}: pass a whole number >= 1")
        ws = self.styles(self.draw_noise(rows + columns, request.generator))
        sources, others = ws[:rows], ws[rows:]
        grid = [others]
        for row in sources:
            grid += [row[None], mix_styles(row[None].expand(columns, -1, -1), others, layers)]
        images = self.render(torch.cat(grid), batch_size=request.batch_size)
        return Drawn(torch.cat([torch.ones_like(images[:1]), images]), None, columns + 1)  # a white corner

    @sample_mode("num_samples rows, each one z at psi from 1 (left) to 0 (right, the mean image) in `mode.steps` "
                 "columns (truncation in W toward the tracked mean w, model.truncation_cutoff layers)", name="truncation")
    def truncation_sweep(self, request: SampleRequest) -> Drawn:
        if self.truncation is not None:
            raise UserError("mode=truncation sweeps psi from 1 to 0 itself; drop truncation=")
        steps = request.options["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise UserError(f"mode.steps={steps}: pass a whole number >= 2")
        ws = self.styles(self.draw_noise(request.num_samples, request.generator))
        psis = torch.linspace(1, 0, steps).tolist()
        ws = torch.stack([truncate_styles(ws, self.generator.w_avg, psi, self.truncation_cutoff) for psi in psis], 1)
        return Drawn(self.render(ws.flatten(0, 1), batch_size=request.batch_size), None, steps)

    @sample_mode("num_samples rows: the sample (the model's fixed noise), `mode.resamples` copies with the noise "
                 "inputs drawn anew, then the per-pixel standard deviation over `mode.realizations` draws of the "
                 "noise, scaled to the grid's largest (StyleGAN's fig. 4)")
    def noise(self, request: SampleRequest) -> Drawn:
        opts = request.options
        resamples, realizations = opts["resamples"], opts["realizations"]
        for key, value, least in (("resamples", resamples, 1), ("realizations", realizations, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise UserError(f"mode.{key}={value}: pass a whole number >= {least}")
        n = request.num_samples
        ws = self.styles(self.draw_noise(n, request.generator))
        draws = max(resamples, realizations)
        repeated = ws.repeat_interleave(draws, 0)
        noise = [torch.randn(n * draws, 1, r, r, generator=request.generator).to(self.device)
                 for r in self.generator.synthesis.layer_resolutions()]
        images = self.render(repeated, noise, request.batch_size).unflatten(0, (n, draws))  # [n, draws, C, H, W]
        std = images.std(dim=1).mean(dim=1, keepdim=True).expand(-1, images.shape[2], -1, -1)
        std = std / std.max().clamp_min(1e-12)
        fixed = self.render(ws, batch_size=request.batch_size)
        rows = torch.cat([fixed[:, None], images[:, :resamples], std[:, None]], 1)
        return Drawn(rows.flatten(0, 1), None, resamples + 2)
