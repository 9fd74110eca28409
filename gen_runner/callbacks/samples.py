"""Sample grids (images) and scatter plots (2-D points) from fixed noise, in TensorBoard and on disk."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from gen_runner.base import GenerativeModule
from gen_runner.data.images import make_grid
from gen_runner.visualize import save_samples_picture, scatter_figure

__all__ = ["SampleLogger"]


class SampleLogger(L.Callback):
    """Every `every_n_steps` steps and at the end of training, samples from the same noise go to
    TensorBoard (`samples/grid`: `num_samples` images, a row per class for conditional models;
    `samples/scatter`: `num_points` points over the validation data); the final ones also to
    `<run>/samples/train_final.png`."""

    def __init__(self, every_n_steps: int = 500, num_samples: int = 64, num_points: int = 2000,
                 temperature: float = 1.0):
        self.every_n_steps, self.temperature = every_n_steps, temperature
        self.num_samples, self.num_points = num_samples, num_points

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        due = self.every_n_steps and step % self.every_n_steps == 0 and step < trainer.max_steps
        if due and isinstance(pl_module, GenerativeModule):
            self._log(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if not isinstance(pl_module, GenerativeModule):
            return
        samples = self._log(trainer, pl_module)
        if samples is not None and trainer.is_global_zero:
            save_samples_picture(samples, Path(trainer.default_root_dir) / "samples" / "train_final.png",
                                 reference=self._reference(trainer, pl_module), nrow=self._row(samples, pl_module))

    @rank_zero_only
    def _log(self, trainer, pl_module):
        n = self.num_samples if pl_module.is_image else self.num_points
        samples = pl_module.fixed_samples(n, self.temperature).cpu()
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                continue
            if samples.dim() == 4:
                grid = make_grid(samples, nrow=self._row(samples, pl_module))
                logger.experiment.add_image("samples/grid", grid, trainer.global_step)
            elif samples.shape[1] == 2:
                fig = scatter_figure(samples, self._reference(trainer, pl_module), f"step {trainer.global_step}")
                logger.experiment.add_figure("samples/scatter", fig, trainer.global_step)
                plt.close(fig)
        return samples

    @staticmethod
    def _row(samples, pl_module) -> int | None:
        """Images a grid row: a conditional model's samples come class by class, a row per class."""
        return len(samples) // pl_module.num_classes if pl_module.num_classes else None

    @staticmethod
    def _reference(trainer, pl_module):
        dm = trainer.datamodule
        if pl_module.is_image or dm is None or dm.splits is None:
            return None
        return dm.images("val", 2000)
