"""Stop on a signal without losing work: finish the step, save last.ckpt at it, say how to resume.

SIGTERM (`kill`, a scheduler's stop, a container shutdown) and SIGINT (Ctrl-C) only set a flag. The
step in progress runs to its end; at its `on_train_batch_end` (after the other callbacks, in the
same place as a periodic save, so the resume is exact) `last.ckpt` is written at that step through
the checkpoint callback (atomically, never with non-finite weights), and the loop stops. train.py
then prints one line naming the checkpoint and the command that resumes it, and exits 128 + the
signal number (143 for SIGTERM, 130 for SIGINT), so `train && eval` stops too.

Lightning has its own SIGTERM handling: the handler it installs during fit sets
`trainer.received_sigterm`, and the loops raise `SIGTERMException` (a SystemExit with no code, so
exit status 0) at the end of the step, during validation, and on every DDP rank. This builds on it:
Lightning's handler chains to ours (it keeps any handler installed before fit), its exception still
ends the loop, and ours only adds the save and the exit status. SIGINT, which Python would turn into
a KeyboardInterrupt in the middle of an optimizer step, is treated like SIGTERM; a second Ctrl-C
interrupts at once, saving nothing more.

A signal that arrives between steps (during validation or at an epoch's end) is saved when the loop
stops (`on_exception`): the same weights, but a resume from there may draw different random numbers
than an uninterrupted run. Another signal (SLURM's SIGUSR1 before a preemption, to save and requeue)
goes into `signals` and, for a different action than stop-and-exit, into `_at_step_end`.
"""
from __future__ import annotations

import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L

__all__ = ["Preemption", "StopRequested"]

log = logging.getLogger("gen_runner")


class StopRequested(SystemExit):
    """Ends the loop at the start of the next step after a stop signal (like Lightning's SIGTERMException)."""


class Preemption(L.Callback):
    """`fallback_path`: where to save when the run has no checkpoint callback."""

    def __init__(self, fallback_path: str | Path, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.fallback_path = Path(fallback_path)
        self.signals = tuple(signals)
        self.received: int | None = None  # the first stop signal
        self.saved: str | None = None  # the checkpoint written at it
        self.step: int | None = None  # the step it holds
        self._previous: dict[int, Any] = {}
        self._start_step = 0

    # -- handlers: installed for fit, restored after it (train.py calls `restore` too: on an exception
    # Lightning's teardown puts back the handlers it found, ours, after our hooks have run).
    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self.restore()

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.received is not None:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        if self.received is None:
            self.received = signum
            log.warning(f"{signal.Signals(signum).name} received: finishing this step, then saving last.ckpt")
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)

    # -- at the end of a step: save and stop
    def on_train_start(self, trainer, pl_module) -> None:
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.received is not None and self.saved is None:
            self._at_step_end(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.received is not None:  # arrived after the last step's end (Lightning stops SIGTERM itself)
            raise StopRequested(128 + self.received)

    def _at_step_end(self, trainer) -> None:
        """What a stop signal does once the step has finished: save last.ckpt at this step."""
        checkpoint = trainer.checkpoint_callback
        if hasattr(checkpoint, "save_last_now") and checkpoint.save_last and checkpoint.dirpath:
            self.saved = checkpoint.save_last_now(trainer)
        else:
            trainer.save_checkpoint(self.fallback_path)
            self.saved = str(self.fallback_path)
        self.step = trainer.global_step

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if (self.received is not None and self.saved is None and isinstance(exception, SystemExit)
                and trainer.global_step > self._start_step):
            self._at_step_end(trainer)  # stopped between steps; not after a second Ctrl-C (a KeyboardInterrupt)

    # -- after fit
    def stopped(self, error: BaseException) -> bool:
        """Whether `error`, raised by `trainer.fit`, is this signal's stop (Lightning's SIGTERMException,
        our StopRequested, its sys.exit(1) after a second Ctrl-C), not some other failure."""
        return self.received is not None and isinstance(error, (SystemExit, KeyboardInterrupt))

    def exit(self, trainer, command: list[str], show=str) -> SystemExit:
        """Print the one line (stderr) saying what was saved and how to resume; the SystemExit to raise."""
        name = signal.Signals(self.received).name
        checkpoint = trainer.checkpoint_callback
        resume_from = self.saved or (checkpoint.last_good(trainer) if hasattr(checkpoint, "last_good") else None)
        if resume_from:
            args = [a for a in command if not a.startswith(("ckpt_path=", "+ckpt_path=", "++ckpt_path="))]
            resume = shlex.join(["gen-runner", *args, f"ckpt_path={show(resume_from)}"])
            what = (f"saved {show(self.saved)} at step {self.step}" if self.saved
                    else f"nothing saved at step {trainer.global_step}; the last good checkpoint is {show(resume_from)}")
            line = f"stopped by {name}: {what}; resume with: {resume}"
        else:
            line = f"stopped by {name} at step {trainer.global_step}, before anything could be saved"
        print(f"gen-runner: {line}", file=sys.stderr, flush=True)
        return SystemExit(128 + self.received)

