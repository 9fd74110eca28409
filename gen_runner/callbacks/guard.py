"""Stop a diverging run with one clear line, before a checkpoint with NaN weights is written."""
from __future__ import annotations

import lightning as L
import torch

from gen_runner.errors import UserError
from gen_runner.finite import module_tensors, nonfinite

__all__ = ["DivergenceGuard", "diverged"]


def diverged(what: str, value: str, step: int, last: str | None) -> UserError:
    """The one line for a run that diverged at `step`, naming the last good checkpoint."""
    where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
    return UserError(f"{what} became {value} at step {step}; {where}. Lower the learning rate (optimizer.lr=...) "
                     "or change the objective, then train again" + (f" or resume with ckpt_path={last}" if last else ""))


class DivergenceGuard(L.Callback):
    """Checks the losses a training step returns every `every_n_steps` steps, and the weights (all
    parameters and buffers, one fused reduction) every `weights_every_n_steps` steps (0: never).

    Lightning runs checkpoint callbacks after all others, so the step whose loss diverged is never
    saved. The loss is computed before the optimizer update, so an update can still make the weights
    inf/NaN with a finite loss: the checkpoint callback checks the weights before every save
    (callbacks/checkpoint.py), and this check finds them earlier between saves.
    """

    def __init__(self, every_n_steps: int = 1, weights_every_n_steps: int = 100):
        self.every_n_steps = every_n_steps
        self.weights_every_n_steps = weights_every_n_steps

    @staticmethod
    def _last_good(trainer) -> str | None:
        checkpoint = trainer.checkpoint_callback
        if hasattr(checkpoint, "last_good"):
            return checkpoint.last_good(trainer)
        return getattr(checkpoint, "last_model_path", "") or None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if outputs is not None and not step % self.every_n_steps:
            losses = outputs if isinstance(outputs, dict) else {"loss": outputs}
            for name in sorted(losses, key=lambda k: k == "loss"):  # name the logged metric, not its alias
                value = losses[name]
                if torch.is_tensor(value) and not torch.isfinite(value).all():
                    raise diverged(name, str(value.float().mean().item()), step, self._last_good(trainer))
        if self.weights_every_n_steps and not step % self.weights_every_n_steps:
            if bad := nonfinite(module_tensors(pl_module)):
                shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
                raise diverged(f"the weights ({shown})", "inf/NaN", step, self._last_good(trainer))
