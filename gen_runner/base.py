"""What every gen-runner LightningModule shares (`RunnerModule`: its data description, the
optimizer factory, the run config carried inside each checkpoint) and what generative ones add
(`GenerativeModule`: sampling in data space).

A checkpoint holds `checkpoint["gen_runner"] = {"family", "data", "config", "choices"}` as plain Python
containers, so `torch.load(path, weights_only=True)` reads it and `eval`/`sample` rebuild the model
from the checkpoint alone (see gen_runner/tasks/common.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import torch

__all__ = ["RunnerModule", "GenerativeModule"]


class RunnerModule(L.LightningModule):
    family = ""  # "gan" | "flow" | "classifier": which commands and metrics apply

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gen_runner"] = {"family": self.family, "data": self.data_info, **self.run_info}


class GenerativeModule(RunnerModule):
    """A model that samples: `draw_noise` + `decode`, so `sample` is seeded and batch-size free."""

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The model's input noise for n samples (a GAN's latent, a flow's base sample at T = 1)."""
        raise NotImplementedError

    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Samples in data space from noise: points as the data, images in [0, 1]."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_batches(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
                       batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """n samples, decoded `batch_size` at a time; all noise is drawn first, so a seeded
        `generator` gives the same samples whatever the batch size or device."""
        noise = self.draw_noise(n, generator)
        step = batch_size or n
        for i in range(0, n, step):
            yield self.decode(noise[i : i + step], temperature)

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               batch_size: int | None = None) -> torch.Tensor:
        return torch.cat(list(self.sample_batches(n, temperature, generator, batch_size)))

    @torch.no_grad()
    def fixed_samples(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """Samples from the same noise at every call (seed 0), in eval mode: for progress grids."""
        was_training = self.training
        self.eval()
        try:
            return self.sample(n, temperature, generator=torch.Generator().manual_seed(0))
        finally:
            self.train(was_training)

    def noise(self, *shape: int, generator: torch.Generator | None = None, uniform: bool = False) -> torch.Tensor:
        """Standard normal (or U(-1, 1)) noise on this module's device; from `generator` if given
        (drawn on the CPU, so a seed gives the same samples on every device)."""
        if generator is None:
            out = torch.empty(*shape, device=self.device)
            return out.uniform_(-1, 1) if uniform else out.normal_()
        draw = torch.rand(*shape, generator=generator) * 2 - 1 if uniform else torch.randn(*shape, generator=generator)
        return draw.to(self.device)
