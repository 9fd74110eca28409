"""What an eval metric reads (`EvalContext`): the model, its data, the `eval.*` options, and what
several metrics share, computed once: the generated samples' inputs and their features under the
chosen extractor, and the real split's features (cached on disk).

`gen-runner eval` builds one context per run and hands it to each metric the model declares
(gen_runner/capabilities.py). The feature extractor comes from a factory the caller passes, so this
module never loads a checkpoint itself.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from gen_runner.metrics.features import extract, real_features

__all__ = ["EvalContext", "Generated", "SPLITS", "pooled"]

log = logging.getLogger("gen_runner")

SPLITS = ("train", "val", "test")


def pooled(found: list[dict]) -> tuple[dict, int]:
    """Per-split results (each with `num_examples`) -> their example-weighted means, and the count."""
    n = sum(f["num_examples"] for f in found)
    return {k: sum(f[k] * f["num_examples"] for f in found) / n for k in found[0] if k != "num_examples"}, n


@dataclass
class Generated:
    """`num_samples` generated samples: the inputs decoded (noise, labels or None) and their
    (features, logits) under the context's extractor."""

    noise: torch.Tensor
    labels: torch.Tensor | None
    features: torch.Tensor
    logits: torch.Tensor


class EvalContext:
    """`model` (in eval mode, on `device`), `datamodule` (set up), `options` (cfg.eval), the eval
    `seed` and `temperature`, `data_key` (what identifies the data, for the real-feature cache) and
    `make_extractor()` (the eval.features extractor, built on first use)."""

    def __init__(self, model, datamodule, options, *, seed: int, temperature: float, device: torch.device,
                 data_key: Any, make_extractor: Callable[[], Any]):
        self.model, self.datamodule, self.options = model, datamodule, options
        self.seed, self.temperature, self.device = seed, temperature, device
        self.data_key, self._make_extractor = data_key, make_extractor

    @property
    def splits(self) -> tuple[str, ...]:
        return SPLITS if self.options.split == "all" else (self.options.split,)

    def loaders(self) -> list:
        return [self.datamodule.loader(s) for s in self.splits]

    def generator(self) -> torch.Generator:
        """A fresh CPU generator seeded by the eval seed."""
        return torch.Generator().manual_seed(self.seed)

    @cached_property
    def extractor(self):
        return self._make_extractor()

    @cached_property
    def generated(self) -> Generated:
        """`eval.num_samples` samples from the seed (labels uniform over the classes for models
        conditioned on labels), decoded `eval.batch_size` at a time, and their features."""
        opts, model = self.options, self.model
        noise, labels = model.draw_inputs(opts.num_samples, self.generator())
        step = opts.batch_size
        batches = (model.decode_batches(noise[i : i + step], None if labels is None else labels[i : i + step],
                                        self.temperature) for i in range(0, len(noise), step))
        features, logits = extract(self.extractor, batches, opts.num_samples, "generated")
        return Generated(noise, labels, features, logits)

    @cached_property
    def real(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of the first `eval.num_real` real images of the evaluated split(s) (the
        targets of paired data, domain B of unpaired data: `images()` of the datamodule), cached
        on disk under the extractor's hash and `data_key`."""
        opts, dm = self.options, self.datamodule
        images = dm.images(self.splits, opts.num_real)
        key = {"data": self.data_key, "split": opts.split, "num_real": len(images),
               "image_size": self.extractor.image_size}
        cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else Path.home() / ".cache/gen-runner/features"
        features, logits, hit = real_features(self.extractor, images, dm.num_levels, key, cache, opts.batch_size)
        log.info("real features: %s", "from the cache" if hit else f"computed and cached in {cache}")
        return features, logits
