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
than an uninterrupted run.

SLURM's preemption and time-limit signal (SIGUSR1 or SIGUSR2, `--signal=USR2@<signal_delay_s>`, sent
that long before the kill) is a stop like SIGTERM, and then a requeue. The requeue follows submitit's
checkpointing protocol, not Lightning's SLURM auto-requeue. Under hydra/launcher=slurm the run is a
submitit job whose handler for that signal calls the job's `checkpoint()` (hydra-submitit-launcher:
the same Hydra job again, so the same run directory) and `scontrol requeue`s it; that handler is kept
here and called only once last.ckpt holds the step (`exit`), and the requeued job resumes the run in
place (tasks/train.py). Lightning's auto-requeue (train.py switches it off) would instead save from
inside its signal handler, in the middle of a step (a GAN's D updated, its G not), into a separate
`hpc_ckpt_<n>.ckpt`, and the requeued job would know nothing of the Hydra run it belongs to; and two
handlers would requeue the job twice. Outside submitit (a hand-written sbatch script) the signal saves
and exits 128 + its number; the script requeues itself, e.g. `trap 'scontrol requeue $SLURM_JOB_ID' ...`.
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
import torch

__all__ = ["Preemption", "StopRequested", "REQUEUE_SIGNALS"]

log = logging.getLogger("gen_runner")

# SLURM's warning before a preemption or the time limit (submitit's default is USR2, Lightning's USR1).
REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class StopRequested(SystemExit):
    """Ends the loop at the start of the next step after a stop signal (like Lightning's SIGTERMException)."""


class Preemption(L.Callback):
    """`fallback_path`: where to save when the run has no checkpoint callback."""

    def __init__(self, fallback_path: str | Path,
                 signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT, *REQUEUE_SIGNALS)):
        self.fallback_path = Path(fallback_path)
        self.signals = tuple(signals)
        self.received: int | None = None  # the first stop signal
        self.saved: str | None = None  # the checkpoint written at it
        self.step: int | None = None  # the step it holds
        self._previous: dict[int, Any] = {}
        self._requeue: Any = None  # the handler that requeues the job (submitit's), called after the save
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
        previous = self._previous.get(signum)
        if self.received is None:
            self.received = signum
            then = " and requeueing" if signum in REQUEUE_SIGNALS and callable(previous) else ""
            log.warning(f"{signal.Signals(signum).name} received: finishing this step, then saving last.ckpt{then}")
        if signum in REQUEUE_SIGNALS:
            self._requeue = self._requeue or previous  # not now: it would requeue (and exit) mid-step
        elif callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)

    # -- at the end of a step: save and stop
    def on_train_start(self, trainer, pl_module) -> None:
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.world_size > 1 and self.saved is None:
            self._agree(trainer)
        if self.received is not None and self.saved is None:
            self._at_step_end(trainer)

    def _agree(self, trainer) -> None:
        """DDP: the ranks stop at the same step, whichever of them got the signal (SLURM signals every
        task, but not at the same instant), since the save is collective. One all-reduce of an int."""
        flag = torch.tensor([self.received or 0], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and self.received is None:
            self.received = int(flag.item())

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

    def exit(self, trainer, run_dir: Path, command: list[str], show=str) -> SystemExit:
        """Print the one line (stderr) saying what was saved and how to resume; requeue the job if the
        signal asked for it and a requeueing handler (submitit's) was installed; the SystemExit to raise."""
        name = signal.Signals(self.received).name
        checkpoint = trainer.checkpoint_callback
        resume_from = self.saved or (checkpoint.last_good(trainer) if hasattr(checkpoint, "last_good") else None)
        if resume_from:
            if Path(resume_from).resolve().parent.parent == Path(run_dir).resolve():  # saved in this run: continue it in place
                further = [a for a in command if a.lstrip("+").startswith("trainer.max_steps=")][-1:]
                resume = shlex.join(["gen-runner", "train", f"resume={show(run_dir)}", *further])
            else:  # nothing saved yet; the checkpoint this run started from
                args = [a for a in command if not a.startswith(("ckpt_path=", "+ckpt_path=", "++ckpt_path="))]
                resume = shlex.join(["gen-runner", *args, f"ckpt_path={show(resume_from)}"])
            what = (f"saved {show(self.saved)} at step {self.step}" if self.saved
                    else f"nothing saved at step {trainer.global_step}; the last good checkpoint is {show(resume_from)}")
            line = f"stopped by {name}: {what}; resume with: {resume}"
        else:
            line = f"stopped by {name} at step {trainer.global_step}, before anything could be saved"
        print(f"gen-runner: {line}", file=sys.stderr, flush=True)
        if callable(self._requeue):
            self._requeue(self.received, None)  # submitit: requeue this job and exit (rank 0); returns elsewhere
        return SystemExit(128 + self.received)

