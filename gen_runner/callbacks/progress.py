"""A progress bar over the whole run (steps out of trainer.max_steps, with its ETA), not per epoch."""
from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar

__all__ = ["StepProgressBar"]


class StepProgressBar(TQDMProgressBar):
    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps > 0 else None)
        bar.initial = bar.n = trainer.global_step  # a resumed run starts where it left off
        bar.set_description("train")

    def on_train_epoch_start(self, trainer, *_) -> None:
        pass  # one bar for the run

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        bar, step = self.train_progress_bar, trainer.global_step
        if self._should_update(step, bar.total):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
