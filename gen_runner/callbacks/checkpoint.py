"""Lightning's ModelCheckpoint, with `last.ckpt` written inside the loop at the final step.

`every_n_train_steps` need not divide `trainer.max_steps`; the final checkpoint is still saved,
and from inside the training loop like every periodic one. Lightning's own `save_last` writes it
after the loop has ended instead, in a state that marks the epoch finished: a run resumed from it
would start the next epoch and see different batches than an uninterrupted run.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["Checkpoint"]


class Checkpoint(ModelCheckpoint):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == trainer.max_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        if self._last_global_step_saved != trainer.global_step:  # stopped before max_steps (max_epochs, ...)
            super().on_train_end(trainer, pl_module)
