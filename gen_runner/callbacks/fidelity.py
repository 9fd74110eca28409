"""In-training evaluation: image metrics every N steps, logged as `val/<metric>`.

With `callbacks=fidelity`, a second checkpoint callback keeps `checkpoints/best.ckpt`, the step
with the lowest `val/fid` so far. Every rank computes the same numbers from the same noise, so
the logged values agree across DDP ranks without communication.
"""
from __future__ import annotations

import lightning as L
import torch

from gen_runner.base import GenerativeModule
from gen_runner.metrics.features import extract, make_extractor
from gen_runner.metrics.suite import fidelity_metrics

__all__ = ["FidelityEvaluator"]


class FidelityEvaluator(L.Callback):
    """Every `every_n_steps` steps: `num_samples` samples from fixed noise against the first
    `num_real` validation images, in the feature space of `features` (`features_ckpt` for a
    classifier); `metrics` from fid, kid, is, prdc."""

    def __init__(self, every_n_steps: int = 1000, num_samples: int = 2000, num_real: int = 2000,
                 metrics=("fid", "kid"), features: str = "classifier", features_ckpt: str | None = None,
                 batch_size: int = 500, kid_subset_size: int = 1000):
        self.every_n_steps, self.num_samples, self.num_real = every_n_steps, num_samples, num_real
        self.metrics, self.batch_size, self.kid_subset_size = list(metrics), batch_size, kid_subset_size
        self.features, self.features_ckpt = features, features_ckpt
        self.extractor, self.real = None, None

    def on_train_start(self, trainer, pl_module) -> None:
        if not isinstance(pl_module, GenerativeModule) or not pl_module.is_image:
            return
        self.extractor = make_extractor(self.features, self.features_ckpt, pl_module.device)
        images = trainer.datamodule.images("val", self.num_real)
        unit = (images[i : i + self.batch_size].float() / (pl_module.num_levels - 1)
                for i in range(0, len(images), self.batch_size))
        self.real = extract(self.extractor, unit, len(images), "real")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if self.extractor is None or step % self.every_n_steps:
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            batches = pl_module.sample_batches(self.num_samples, generator=torch.Generator().manual_seed(0),
                                               batch_size=self.batch_size)
            fake = extract(self.extractor, batches, self.num_samples, "generated")
        finally:
            pl_module.train(was_training)
        values, _ = fidelity_metrics(self.real, fake, self.metrics, kid_subset_size=self.kid_subset_size)
        values = {f"val/{k}": v for k, v in values.items()}
        pl_module.log_dict(values, logger=False)  # for the progress bar and checkpoint monitors
        for logger in trainer.loggers:  # at this exact step, not at the next logging interval
            logger.log_metrics(values, step)
