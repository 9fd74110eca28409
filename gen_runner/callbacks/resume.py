"""Exact resume: the RNG streams and the training loader's position travel in the checkpoint.

Lightning restores weights, optimizers and step counters but not the global RNG, and its
prefetching makes a loader's own count of served batches run one ahead. This callback records
the batches the loop has finished and the RNG states, and puts the RNG back when training starts
again (after any sanity check), so N steps + resume to 2N equals 2N steps uninterrupted.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch

from gen_runner.data.loader import ResumableLoader

__all__ = ["ResumeState"]


class ResumeState(L.Callback):
    def __init__(self):
        self._pending: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.consumed = batch_idx + 1

    def state_dict(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending["torch"])
        if "cuda" in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending["cuda"])
        self._pending = None
