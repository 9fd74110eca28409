"""What every gen-runner LightningModule shares (`RunnerModule`: its data description, the
optimizer factory, the run config carried inside each checkpoint) and what generative ones add
(`GenerativeModule`: sampling in data space, for given class labels where the model is conditional,
the sample modes every generator has and the image metrics every generator is scored on).

Models declare their sample modes and eval metrics with gen_runner/capabilities.py's decorators;
`gen-runner sample` and `eval` find them there.

A checkpoint holds `checkpoint["gen_runner"] = {"family", "data", "config", "choices"}` as plain Python
containers, so `torch.load(path, weights_only=True)` reads it and `eval`/`sample` rebuild the model
from the checkpoint alone (see gen_runner/tasks/common.py).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch

from gen_runner import walks
from gen_runner.capabilities import Drawn, SampleRequest, eval_metric, sample_mode
from gen_runner.errors import UserError
from gen_runner.metrics.suite import image_metrics
from gen_runner.truncation import truncated_normal

__all__ = ["RunnerModule", "GenerativeModule"]


class RunnerModule(L.LightningModule):
    family = ""  # "gan" | "flow" | "classifier": what reports and messages call it
    # What `truncation=` means for it (`gen-runner --help` and the README say it); None: it has none.
    # GenerativeModule.noise draws Gaussian noise truncated to [-t, t] inside `truncated(t)` (BigGAN's trick).
    truncation_means: str | None = None
    truncation: float | None = None  # set for a sampling session by `truncated`

    def __init__(self, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None):
        super().__init__()
        self.data_info = dict(data)
        self.data_shape = tuple(data["shape"])
        self.num_levels = data.get("num_levels")
        self.optimizer_factory = optimizer
        # {"config": the resolved run config, "choices": its group options}, set by `gen-runner train`
        self.run_info: dict = {}

    @property
    def is_image(self) -> bool:
        return len(self.data_shape) == 3

    @property
    def num_dims(self) -> int:
        return math.prod(self.data_shape)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Data as delivered (discrete pixel values) -> images in [0, 1]; points unchanged."""
        return x.float() / (self.num_levels - 1) if self.is_image else x

    @contextlib.contextmanager
    def truncated(self, value: float | None):
        """Sample with `truncation=value` inside the block (None: as trained); one line if the model
        has no truncation or the value is out of its range."""
        if value is None:
            yield self
            return
        if self.truncation_means is None:
            raise UserError(f"truncation={value}: this {type(self).__name__} has no truncation trick "
                            "(GANs with Gaussian noise have one); drop truncation=")
        self.check_truncation(value)
        before, self.truncation = self.truncation, value
        try:
            yield self
        finally:
            self.truncation = before

    def check_truncation(self, value: float) -> None:
        """Refuse, in one line, a truncation value out of the model's range (the base: a threshold > 0)."""
        if not value > 0:
            raise UserError(f"truncation={value}: the truncation threshold is a value > 0 (smaller: less variety)")

    def use_weights(self, which: str) -> str:
        """eval and sample: which weights the model holds, given `which` ("ema" or "raw"). The base has
        one set of weights ("raw"); GANs with a generator EMA override it (gen_runner/gans/module.py)."""
        return "raw"

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gen_runner"] = {"family": self.family, "data": self.data_info, **self.run_info}


class GenerativeModule(RunnerModule):
    """A model that samples: `draw_noise` + `decode`, so `sample` is seeded and batch-size free.

    A conditional model sets `num_classes` and decodes `decode(noise, temperature, labels)`: it
    samples for given labels, or for labels drawn uniformly over its classes."""

    num_classes: int | None = None  # conditional models: the classes 0..K-1 they generate
    inputs: tuple[str, ...] = ("noise",)  # what it generates from: "noise", "labels", "image"
    temperature_means: str | None = None  # what `temperature` does to its samples; None: it is ignored

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The model's input noise for n samples (a GAN's latent, a flow's base sample at T = 1)."""
        raise NotImplementedError

    @property
    def gaussian_noise(self) -> bool:
        """Whether `draw_noise` is standard normal (latent walks then interpolate on the sphere)."""
        raise NotImplementedError

    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Samples in data space from noise: points as the data, images in [0, 1]. Conditional
        models take the samples' `labels` [n] as a third argument."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_batches(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
                       batch_size: int | None = None, labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """n samples, decoded `batch_size` at a time; a conditional model's labels (`labels` [n],
        else drawn uniformly over its classes) and then all noise are drawn first, so a seeded
        `generator` gives the same samples whatever the batch size or device."""
        noise, labels = self.draw_inputs(n, generator, labels)
        step = batch_size or n
        for i in range(0, n, step):
            conditions = () if labels is None else (labels[i : i + step],)
            yield self.decode(noise[i : i + step], temperature, *conditions)

    def draw_inputs(self, n: int, generator: torch.Generator | None = None,
                    labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(noise, labels) of n samples: a conditional model's labels first (`labels` [n], else drawn
        uniformly), then the noise; what `sample` decodes, so latent walks can reuse its draws."""
        if labels is not None:
            labels = self.check_labels(labels)
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} samples")
        elif self.num_classes is not None:
            labels = self.draw_labels(n, generator)
        return self.draw_noise(n, generator), labels

    def decode_batches(self, noise: torch.Tensor, labels: torch.Tensor | None, temperature: float = 1.0,
                       batch_size: int | None = None) -> torch.Tensor:
        """`decode` over given inputs, `batch_size` at a time, on the CPU."""
        step = batch_size or len(noise)
        return torch.cat([self.decode(noise[i : i + step], temperature,
                                      *(() if labels is None else (labels[i : i + step],))).cpu()
                          for i in range(0, len(noise), step)])

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               batch_size: int | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat(list(self.sample_batches(n, temperature, generator, batch_size, labels)))

    @torch.no_grad()
    def fixed_samples(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """Samples from the same noise at every call (seed 0), in eval mode: for progress grids.
        Conditional models: n // num_classes (at least one) of each class, class by class."""
        labels = None if self.num_classes is None else self.class_rows(max(1, n // self.num_classes))
        was_training = self.training
        self.eval()
        try:
            return self.sample(n if labels is None else len(labels), temperature,
                               generator=torch.Generator().manual_seed(0), labels=labels)
        finally:
            self.train(was_training)

    # -- conditional models ----------------------------------------------------------------
    def check_labels(self, labels) -> torch.Tensor:
        """Class labels (a sequence or tensor of ints) as int64 [n] on this module's device."""
        if self.num_classes is None:
            raise ValueError("this model is unconditional: it samples without labels")
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if not len(labels) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise UserError(f"labels={labels.tolist()}: give class indices in 0..{self.num_classes - 1}")
        return labels.to(self.device)

    def draw_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n labels uniform over the classes; from `generator` (on the CPU) if given, as `noise`."""
        if generator is None:
            return torch.randint(self.num_classes, (n,), device=self.device)
        return torch.randint(self.num_classes, (n,), generator=generator).to(self.device)

    def class_rows(self, per_class: int) -> torch.Tensor:
        """`per_class` labels of each class, class by class: a grid of `per_class` columns has a row per class."""
        if per_class < 1:
            raise UserError(f"per_class={per_class}: ask for at least one sample per class")
        return torch.arange(self.num_classes, device=self.device).repeat_interleave(per_class)

    def noise(self, *shape: int, generator: torch.Generator | None = None, uniform: bool = False) -> torch.Tensor:
        """Standard normal (or U(-1, 1)) noise on this module's device; from `generator` if given
        (drawn on the CPU, so a seed gives the same samples on every device). Inside `truncated(t)`
        the normal draws are truncated to [-t, t] (values beyond resampled)."""
        if self.truncation is not None and not uniform:
            return truncated_normal(shape, self.truncation, generator, self.device)
        if generator is None:
            out = torch.empty(*shape, device=self.device)
            return out.uniform_(-1, 1) if uniform else out.normal_()
        draw = torch.rand(*shape, generator=generator) * 2 - 1 if uniform else torch.randn(*shape, generator=generator)
        return draw.to(self.device)

    # -- what `gen-runner sample` and `eval` offer for every generator ---------------------------
    @sample_mode("num_samples samples (labels=/per_class= for models conditioned on labels: a row per class)")
    def samples(self, request: SampleRequest) -> Drawn:
        noise, labels = self.draw_inputs(request.num_samples, request.generator, request.labels)
        return Drawn(self.decode_batches(noise, labels, request.temperature, request.batch_size), labels,
                     request.per_class)

    @sample_mode("num_samples rows of `steps` samples along paths between two random latents (gen_runner/walks.py)")
    def interpolate(self, request: SampleRequest) -> Drawn:
        opts = request.options
        noise, labels = walks.interpolation_rows(self, request.num_samples, opts["steps"], opts["interpolation"],
                                                 request.generator, request.labels)
        return Drawn(self.decode_batches(noise, labels, request.temperature, request.batch_size), labels,
                     opts["steps"])

    @sample_mode("a row per operand A, B, C (its samples, then the decoded mean), then the result A - B + C")
    def arithmetic(self, request: SampleRequest) -> Drawn:
        if request.labels is not None:
            raise UserError("mode=arithmetic takes its samples' labels from the seed's draw; drop labels/per_class")
        opts = request.options
        parts = walks.vector_arithmetic(self, request.num_samples, request.generator, opts["groups"],
                                        opts["group_size"])
        operands, results = parts["operand_noise"], parts["result_noise"]
        noise = torch.cat([operands.flatten(0, 1), results])
        labels = None if parts["result_labels"] is None else torch.cat([parts["operand_labels"].flatten(),
                                                                        parts["result_labels"]])
        layout = [operands.shape[1]] * len(operands) + [len(results)]
        return Drawn(self.decode_batches(noise, labels, request.temperature, request.batch_size), labels, layout)

    @eval_metric("fid, kid, is, precision, recall, density, coverage (eval.metrics); Stacked MNIST: modes, "
                 "reverse_kl", needs="images and eval.features=classifier|inception")
    def fidelity(self, ctx):
        if not ctx.options.features:
            return None
        if not self.is_image:
            raise UserError("eval.features applies to images; this model generates points")
        return image_metrics(ctx)


class Autoencoding(GenerativeModule):
    """A generator with an encoder (BiGAN and VEEGAN beside GANModule, VAEs): `reconstruction(x)` maps data as
    delivered to its reconstruction as shown (images in [0, 1], or points), and the `reconstruct`
    sample mode draws test examples beside their reconstructions."""

    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @sample_mode("the first num_samples test examples in rows of `mode.steps`, each row followed by its "
                 "reconstructions (BiGAN, VEEGAN: G(E(x)); VAEs: decoded from the posterior's flow applied "
                 "to its mean)")
    def reconstruct(self, request: SampleRequest) -> Drawn:
        if request.labels is not None:
            raise UserError("mode=reconstruct draws data examples, not classes; drop labels/per_class")
        x = request.data().images("test", request.num_samples)
        step = request.batch_size or len(x)
        recon = torch.cat([self.reconstruction(x[i : i + step]).cpu() for i in range(0, len(x), step)])
        steps = request.options["steps"]
        rows = [part for pair in zip(torch.split(self.to_unit(x), steps), torch.split(recon, steps)) for part in pair]
        return Drawn(torch.cat(rows), None, [len(r) for r in rows])
