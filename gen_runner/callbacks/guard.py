"""Stop a diverging run with one clear line, before a checkpoint with NaN weights is written."""
from __future__ import annotations

import lightning as L
import torch

from gen_runner.errors import UserError

__all__ = ["DivergenceGuard"]


class DivergenceGuard(L.Callback):
    """Checks the losses a training step returns every `every_n_steps` steps.

    Lightning runs checkpoint callbacks after all others, so the step that diverged is never saved.
    """

    def __init__(self, every_n_steps: int = 1):
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if outputs is None or trainer.global_step % self.every_n_steps:
            return
        losses = outputs if isinstance(outputs, dict) else {"loss": outputs}
        for name in sorted(losses, key=lambda k: k == "loss"):  # name the logged metric, not its alias
            value = losses[name]
            if torch.is_tensor(value) and not torch.isfinite(value).all():
                last = getattr(trainer.checkpoint_callback, "last_model_path", "") or None
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
                raise UserError(
                    f"{name} became {value.float().mean().item()} at step {trainer.global_step}; {where}. "
                    "Lower the learning rate (optimizer.lr=...) or change the objective, then train again"
                    + (f" or resume with ckpt_path={last}" if last else "")
                )
