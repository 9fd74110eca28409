"""The image-to-image base: GANs that generate from an input image, not from noise (pix2pix,
CycleGAN, SRGAN, context encoders). A `TranslationModule` is a `GANModule` (the same training loop,
optimizers, checkpoints and losses contract) whose generator maps an input image to an output image.

The contract a variant codes against:

- Data (gen_runner/data): `describe()` has "kind": "paired" | "unpaired", "input_shape" (the
  input, or domain A) and "shape" (the target, or domain B), both (C, H, W) and possibly of
  different sizes, `num_levels` and `num_classes`. Paired batches are `(input, target, labels)`
  plus `mask` for inpainting tasks (float [B, 1, H, W], 1 = missing); unpaired ones are
  `(a, b, label_a, label_b)`. Images are uint8 in 0..num_levels-1, labels int64 (-1: unknown).
  A variant lists the kinds it trains on in `data_kinds`.
- Nets: `generator(input_shape=, data_shape=)` and `discriminator(input_shape=, data_shape=)` are
  the config's factories (partials); the base builds `self.generator` (input_shape -> data_shape)
  and `self.discriminator` with them. A variant with more nets (CycleGAN's reverse pair) builds
  them in its own `__init__` from the same factories with the shapes swapped
  (`self.make_generator(input_shape=..., data_shape=...)`).
- `batch_parts(batch, domain)` reads any loader batch as (input, target | None, labels | None,
  mask | None) (unpaired: `domain` A's or B's images, no target); training, `translate` split=...
  and eval all read batches through it, so a variant taking other data (context encoders: plain
  images) overrides it alone.
- `gan_batch(batch) -> TranslationBatch`: `real` = the target, `fake` = G(input), `input` = the
  input in model space ([-1, 1]), `mask` (inpainting) and `labels`. A variant's losses read these;
  an unpaired variant overrides `gan_batch`.
- `forward(x, mask=None)`: the output for inputs `x` in model space; what training, sampling and
  eval call (context encoders paste the prediction into the context here). Inputs must be
  `input_shape`-sized; the base checks external ones.
- Sample mode `translate` (configs/mode/translate.yaml): `input=` an image folder, a .npy/.npz/.pt
  file of images, or split=<train|val|test> (the checkpoint's data, with its targets). It writes a
  row per input: input | output (`mode.draws` outputs, each a fresh draw of G's noise, e.g.
  pix2pix's dropout) | target (where the data has one); inputs of another size are shown resized
  (nearest) and grey ones as RGB next to RGB outputs. samples.pt holds these rows, tile by tile.
  `mode.direction` is AtoB here; CycleGAN overrides `translate_columns` for BtoA and cycle.
- Eval metrics (on the `eval.split` split, the first `eval.num_samples` inputs): `fidelity`
  (FID, KID, precision/recall, ... of the outputs against the real targets, or real domain-B images
  for unpaired data, with `eval.features`), `paired` (L1, PSNR and SSIM against the targets, in
  [0, 1]; paired data only) and `class_preservation` (the features classifier's accuracy on the
  outputs against the inputs' labels). A variant adds metrics with @eval_metric, or overrides these.
  `translations(ctx)` gives the outputs once per eval run.
- Noise does not apply: the noise modes (samples, interpolate, arithmetic), the 2-D mode metric
  and `truncation=` are not offered (redefined undeclared, gen_runner/capabilities.py), and
  `draw_noise` refuses in one line (e.g. callbacks=fidelity, which samples from noise).
"""
from __future__ import annotations

import contextlib
import logging
import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from gen_runner.capabilities import Drawn, SampleRequest, eval_metric, sample_mode
from gen_runner.data.images import load_image_folder, load_tensor_file
from gen_runner.errors import UserError
from gen_runner.gans.module import GANBatch, GANModule
from gen_runner.gans.objectives import Objective
from gen_runner.metrics import fidelity as fidelity_lib
from gen_runner.metrics.features import ClassifierFeatures, extract, real_features
from gen_runner.metrics.suite import fidelity_metrics

__all__ = ["TranslationModule", "TranslationBatch", "Inputs", "Translated", "SPLIT_PREFIX"]

log = logging.getLogger("gen_runner")

SPLIT_PREFIX = "split="
_DATA_OPTIONS = ("edges2digits, sr4, inpaint_center, digits2thick, paired_folder, unpaired_folder")


@dataclass
class TranslationBatch(GANBatch):
    """A GANBatch with G's `input` (model space, [-1, 1]) and, for inpainting, the `mask`
    ([B, 1, H, W], 1 = missing); `real` is the target, `fake` G's output for `input`."""

    input: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@dataclass
class Inputs:
    """Images to translate, in [0, 1]: `images` [N, *input_shape], and where known their `targets`,
    `labels` (-1: unknown) and `masks`."""

    images: torch.Tensor
    targets: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    masks: torch.Tensor | None = None


@dataclass
class Translated:
    """An eval split translated: `outputs` and `targets` in [0, 1] (targets None for unpaired
    data), the inputs' `labels` (or None) and the real target-domain images `real` (uint8)."""

    outputs: torch.Tensor
    targets: torch.Tensor | None
    labels: torch.Tensor | None
    real: torch.Tensor


_translations: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # EvalContext -> Translated


def _take(batches: Iterator[Sequence[torch.Tensor]], n: int) -> list[torch.Tensor]:
    """The first n examples of a loader's batches, part by part."""
    parts, count = None, 0
    for batch in batches:
        parts = [[t] for t in batch] if parts is None else [p + [t] for p, t in zip(parts, batch)]
        count += len(batch[0])
        if count >= n:
            break
    return [torch.cat(p)[:n] for p in parts]


def tile_rows(columns: list[torch.Tensor], shape: Sequence[int]) -> torch.Tensor:
    """Columns of images [N, C, H, W] in [0, 1] -> the rows' tiles [N * len(columns), C', H', W'],
    every image resized (nearest) to `shape`'s size and grey ones repeated to its channels."""
    channels = max(c.shape[1] for c in columns)
    shown = []
    for images in columns:
        if tuple(images.shape[2:]) != tuple(shape[1:]):
            images = F.interpolate(images, size=tuple(shape[1:]), mode="nearest")
        shown.append(images.expand(-1, channels, -1, -1) if images.shape[1] == 1 else images)
    return torch.stack(shown, 1).flatten(0, 1)


class TranslationModule(GANModule):
    """A GAN whose generator translates images: G(input) -> output (see the module docstring)."""

    inputs = ("image",)
    truncation_means = None  # no noise to truncate
    data_kinds: tuple[str, ...] = ("paired",)  # the data kinds a variant trains on

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 objective: Objective | None, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 lr_g: float | None = None, lr_d: float | None = None, n_critic: int = 1,
                 grad_clip: float | None = None):
        kind = data.get("kind")
        if kind not in self.data_kinds:
            raise UserError(f"{type(self).__name__} translates {' or '.join(self.data_kinds)} images, the data is "
                            f"{kind}: pick image-to-image data ({_DATA_OPTIONS})")
        input_shape = tuple(data.get("input_shape") or data["shape"])
        super().__init__(lambda latent_dim, data_shape: generator(input_shape=input_shape, data_shape=data_shape),
                         lambda data_shape: discriminator(input_shape=input_shape, data_shape=data_shape),
                         objective, data, optimizer, latent_dim=0, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d,
                         grad_clip=grad_clip)
        self.input_shape = input_shape
        self.make_generator, self.make_discriminator = generator, discriminator

    # -- what image-to-image models do not offer (noise) -------------------------------------
    samples = interpolate = arithmetic = None  # the noise modes
    modes = None  # the 2-D Gaussian-mixture metric

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise UserError(f"{type(self).__name__} translates images and has no noise to sample from: use gen-runner "
                        "sample mode=translate input=..., and gen-runner eval (not callbacks=fidelity) for metrics")

    # -- translating ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """G's output for inputs `x` (model space); `mask` for inpainting variants."""
        return self.generator(x)

    def batch_parts(self, batch: Sequence[torch.Tensor], domain: str = "A") -> tuple:
        """A loader batch's (input, target or None, labels or None, mask or None): paired batches
        are (input, target, labels[, mask]); unpaired ones (a, b, label_a, label_b) give `domain`'s
        images and labels and no target."""
        if self.data_info["kind"] == "unpaired":
            index = 0 if domain == "A" else 1
            return batch[index], None, batch[2 + index], None
        x, target, labels, *rest = batch
        return x, target, labels, rest[0].float() if rest else None

    def gan_batch(self, batch: Sequence[torch.Tensor]) -> TranslationBatch:
        """A paired batch -> real = the target, fake = G(input), in model space."""
        x, target, labels, mask = self.batch_parts(batch)
        source = self.preprocess(x)
        return TranslationBatch(self.preprocess(target), self(source, mask), labels=labels, input=source, mask=mask)

    def from_unit(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device).float() * 2 - 1

    @torch.no_grad()
    def translated(self, images: torch.Tensor, masks: torch.Tensor | None = None, batch_size: int | None = None,
                   net: Callable | None = None) -> torch.Tensor:
        """Outputs in [0, 1] on the CPU for input `images` in [0, 1], `batch_size` at a time, by
        `net` (model space -> model space; default `self.forward`)."""
        net = net or self
        step = batch_size or len(images)
        outputs = []
        for i in range(0, len(images), step):
            mask = None if masks is None else masks[i : i + step].to(self.device)
            outputs.append(((net(self.from_unit(images[i : i + step]), mask) + 1) / 2).clamp(0, 1).cpu())
        return torch.cat(outputs)

    @contextlib.contextmanager
    def seeded(self, generator: torch.Generator):
        """A block whose global random draws (dropout) follow `generator`; the random state is
        restored afterwards."""
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    # -- what to translate ------------------------------------------------------------------------
    def read_input(self, request: SampleRequest, domain: str = "A") -> Inputs:
        """The first `num_samples` images `input=` names: split=<name> (the checkpoint's data: the
        domain's images, and for paired data the targets, labels and masks), an image folder, or a
        .npy/.npz/.pt file (integers: the data's levels 0..num_levels-1; floats: [0, 1])."""
        source, n = request.input, request.num_samples
        shape = self.input_shape if domain == "A" else self.data_shape
        if source is None:
            raise UserError("mode=translate needs input=<image folder | .npy file | split=test> (what to translate)")
        if str(source).startswith(SPLIT_PREFIX):
            split = str(source)[len(SPLIT_PREFIX):]
            if split not in ("train", "val", "test"):
                raise UserError(f"input={source}: choose split=train, split=val or split=test")
            x, target, labels, mask = self.batch_parts(_take(iter(request.data().loader(split)), n), domain)
            return Inputs(self.to_unit(x), None if target is None else self.to_unit(target), labels, mask)
        path = Path(str(source)).expanduser()
        try:
            if path.is_dir():
                if shape[1] != shape[2]:
                    raise UserError(f"input={source}: image folders are read square; this model translates "
                                    f"{shape[1]}x{shape[2]} images: pass a .npy file")
                images = load_image_folder(path, shape[1], shape[0])[0][:n].float() / 255
            elif path.is_file():
                data = load_tensor_file(path)[0][:n]
                images = data.float() / (self.num_levels - 1) if not data.is_floating_point() else data.float()
            else:
                raise UserError(f"input={source}: no such file or folder; pass an image folder, a .npy file of "
                                "images or split=test")
        except (ValueError, FileNotFoundError) as e:
            raise UserError(f"input={source}: {e}") from None
        if images.dim() != 4 or tuple(images.shape[1:]) != tuple(shape):
            raise UserError(f"input={source}: images of shape {tuple(images.shape[1:])}, this model translates "
                            f"{tuple(shape)} (C, H, W) images")
        if images.min() < 0 or images.max() > 1:
            raise UserError(f"input={source}: pixel values outside the data's range (integers 0..{self.num_levels - 1},"
                            " floats in [0, 1])")
        return Inputs(images)

    def translate_columns(self, inputs: Inputs, options: dict, batch_size: int | None) -> list[torch.Tensor]:
        """The picture's columns for `inputs`: input | `draws` outputs | target (if known)."""
        direction = options.get("direction", "AtoB")
        if direction != "AtoB":
            raise UserError(f"mode.direction={direction}: {type(self).__name__} translates its input domain to its "
                            "output (AtoB) only; drop mode.direction")
        draws = options.get("draws", 1)
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
            raise UserError(f"mode.draws={draws!r}: pass a whole number of outputs per input, at least 1")
        outputs = [self.translated(inputs.images, inputs.masks, batch_size) for _ in range(draws)]
        return [inputs.images, *outputs, *([] if inputs.targets is None else [inputs.targets])]

    @sample_mode("a row per input (input=<folder | .npy | split=test>, the first num_samples): input | output "
                 "(mode.draws of them) | target where the data has one")
    def translate(self, request: SampleRequest) -> Drawn:
        if request.labels is not None:
            raise UserError("mode=translate translates input images; drop labels/per_class")
        inputs = self.read_input(request)
        with self.seeded(request.generator):
            columns = self.translate_columns(inputs, dict(request.options), request.batch_size)
        return Drawn(tile_rows(columns, self.data_shape), None, len(columns))

    @torch.no_grad()
    def fixed_samples(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """Progress grids: the first validation inputs, input | output | target, as a square grid of
        at most n tiles with whole rows (seed 0)."""
        columns = 2 if self.data_info["kind"] == "unpaired" else 3  # input | output (| target)
        per_row = max(1, math.isqrt(n) // columns)  # examples a grid row; the grid is (columns * per_row)^2
        request = SampleRequest(num_samples=columns * per_row**2, options={}, input=f"{SPLIT_PREFIX}val",
                                generator=torch.Generator().manual_seed(0), data=lambda: self.trainer.datamodule)
        was_training = self.training
        self.eval()
        try:
            return self.translate(request).samples
        finally:
            self.train(was_training)

    # -- eval --------------------------------------------------------------------------------------
    @staticmethod
    def eval_parts(ctx, n: int) -> list[torch.Tensor]:
        """The first `n` examples of each eval split, batch part by batch part, joined across splits."""
        return [torch.cat(p) for p in zip(*(_take(iter(loader), n) for loader in ctx.loaders()))]

    def translations(self, ctx) -> Translated:
        """The first `eval.num_samples` inputs of the eval split(s) translated (seeded by the eval
        seed), their targets and labels, and the split's real target-domain images; once per context."""
        if ctx not in _translations:
            n, n_real = ctx.options.num_samples, ctx.options.num_real
            split_parts = [_take(iter(loader), max(n, n_real)) for loader in ctx.loaders()]
            parts = [torch.cat(p) for p in zip(*split_parts)]
            x, target, labels, mask = (None if p is None else p[:n] for p in self.batch_parts(parts))
            with self.seeded(ctx.generator()):
                outputs = self.translated(self.to_unit(x), mask, ctx.options.batch_size)
            real = parts[1] if target is None else self.batch_parts(parts)[1]  # unpaired: domain B's images
            _translations[ctx] = Translated(outputs, None if target is None else self.to_unit(target), labels,
                                            real[:n_real])
        return _translations[ctx]

    @eval_metric("fid, kid, is, precision, recall, density, coverage (eval.metrics) of the outputs against the "
                 "real targets (unpaired: real domain-B images)", needs="eval.features=classifier|inception")
    def fidelity(self, ctx):
        if not ctx.options.features:
            return None
        return self.fidelity_against(ctx, self.translations(ctx).outputs, self.translations(ctx).real, "B")

    def fidelity_against(self, ctx, outputs: torch.Tensor, real: torch.Tensor, domain: str,
                         extractor=None) -> tuple[dict, dict]:
        """eval.metrics of `outputs` (in [0, 1]) against `real` uint8 images of `domain`, under
        `extractor` (default eval.features'; the real features cached on disk)."""
        opts, extractor = ctx.options, extractor or ctx.extractor
        key = {"data": ctx.data_key, "split": opts.split, "num_real": len(real), "domain": domain,
               "image_size": extractor.image_size}
        cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else Path.home() / ".cache/gen-runner/features"
        real_f = real_features(extractor, real, self.num_levels, key, cache, opts.batch_size)[:2]
        batches = (outputs[i : i + opts.batch_size] for i in range(0, len(outputs), opts.batch_size))
        fake = extract(extractor, batches, len(outputs), "translated")
        metrics, details = fidelity_metrics(real_f, fake, list(opts.metrics), opts.kid_subsets, opts.kid_subset_size,
                                            opts.is_splits, opts.prdc_k, ctx.seed)
        return metrics, {"features": extractor.name, "features_sha256": extractor.sha256, "num_translated":
                         len(outputs), "num_real": len(real), "split": opts.split, **details}

    @eval_metric("l1, psnr, ssim: the outputs against the targets, images in [0, 1] (means over images)",
                 needs="paired data")
    def paired(self, ctx):
        found = self.translations(ctx)
        return None if found.targets is None else self.paired_scores(found.outputs, found.targets)

    @staticmethod
    def paired_scores(out: torch.Tensor, target: torch.Tensor) -> tuple[dict, dict]:
        """L1, PSNR and SSIM of images `out` against `target`, both in [0, 1]."""
        psnr = peak_signal_noise_ratio(out, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
        ssim = structural_similarity_index_measure(out, target, data_range=1.0, reduction="none")
        return {"l1": (out - target).abs().mean().item(), "psnr": psnr.mean().item(), "ssim": ssim.mean().item()}, {
            "paired": "l1: mean |output - target|; psnr: per image, 10 log10(1 / MSE), averaged; ssim: per image "
                      "(torchmetrics: Gaussian window 11, sigma 1.5), averaged; images in [0, 1]",
            "num_translated": len(out)}

    @eval_metric("class_accuracy: the features classifier's accuracy on the outputs against the inputs' labels",
                 needs="eval.features=classifier of the data's classes, labelled data")
    def class_preservation(self, ctx):
        found = self.translations(ctx) if ctx.options.features else None
        if found is None or found.labels is None or not isinstance(ctx.extractor, ClassifierFeatures):
            return None
        if ctx.extractor.model.num_classes != self.data_info.get("num_classes"):
            log.warning("no class_accuracy: the features classifier has %d classes, the data %s",
                        ctx.extractor.model.num_classes, self.data_info.get("num_classes"))
            return None
        return self.class_accuracy_of(ctx, found.outputs, found.labels)

    @staticmethod
    def class_accuracy_of(ctx, images: torch.Tensor, labels: torch.Tensor, extractor=None) -> tuple[dict, dict] | None:
        """The features classifier's (or `extractor`'s) accuracy on `images` against `labels` (those >= 0)."""
        known = labels >= 0
        if not known.any():
            return None
        batches = (images[known][i : i + 500] for i in range(0, int(known.sum()), 500))
        logits = extract(extractor or ctx.extractor, batches, int(known.sum()), "class")[1]
        return {"class_accuracy": fidelity_lib.class_accuracy(logits, labels[known])}, {
            "class_accuracy": "share of outputs the features classifier assigns their input's label"}
