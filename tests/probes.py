"""Test-only callbacks, named in a run's config with `+callbacks.<name>={_target_:probes.<class>,...}`."""
from __future__ import annotations

import os
import time

import lightning as L
import torch


class StepProbe(L.Callback):
    """Prints each finished step; at step `at` stalls until SIGTERM (so that a signal sent from
    outside lands inside that step) or signals its own process (tests/test_preemption.py)."""

    def __init__(self, at: int = 0, stall: float = 0.0, send: int = 0):
        self.at, self.stall, self.send = at, stall, send

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        print(f"step {trainer.global_step}", flush=True)
        if trainer.global_step == self.at:
            if self.send:
                os.kill(os.getpid(), self.send)
            end = time.monotonic() + self.stall
            while time.monotonic() < end and not trainer.received_sigterm:  # (a signal does not end a sleep)
                time.sleep(0.02)


class Poison(L.Callback):
    """Sets one weight to inf at the end of step `at`, after its loss was found finite: what an update
    that overflows does (tests/test_nonfinite.py)."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.at:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("inf")
