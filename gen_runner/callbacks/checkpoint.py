"""Lightning's ModelCheckpoint, with `last.ckpt` written inside the loop at the final step.

`every_n_train_steps` need not divide `trainer.max_steps`; the final checkpoint is still saved,
and from inside the training loop like every periodic one. Lightning's own `save_last` writes it
after the loop has ended instead, in a state that marks the epoch finished: a run resumed from it
would start the next epoch and see different batches than an uninterrupted run.

A save cannot tear a checkpoint. Lightning's TorchCheckpointIO writes through fsspec: a temporary
file in $TMPDIR, then a move, which across filesystems (tmpfs is common on clusters) is a copy that
truncates the target first; a kill then leaves a 0-byte last.ckpt and an orphan in $TMPDIR.
`AtomicCheckpointIO` (train.py passes it to the Trainer) writes `<target>.<pid>.tmp` beside the
target, flushes and fsyncs it, `os.replace`s it over the target (atomic within a filesystem) and
fsyncs the directory. It is a CheckpointIO plugin rather than an override of this callback's
`_save_checkpoint` because every writer goes through the plugin: the periodic and final saves, the
save on SIGTERM/SIGINT (callbacks/preemption.py) and train.py's own `trainer.save_checkpoint`; and
the strategy keeps deciding which rank writes. A kill leaves at most one `*.tmp` file, which the
next save in that directory, or a resume from it, removes.

Each save writes `step=<N>.ckpt` and then points `last.ckpt` at it (a hard link, so no second copy,
swapped in by the same rename); the newest `keep_last_k` step files stay, so a `last.ckpt` damaged
by anything else still has a predecessor, which `gen-runner train ckpt_path=.../last.ckpt` falls
back to. A model whose weights hold inf/NaN is never saved: the save stops the run instead, naming
the last good checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from gen_runner.callbacks.guard import diverged
from gen_runner.errors import UserError
from gen_runner.finite import module_tensors, nonfinite

__all__ = ["Checkpoint", "AtomicCheckpointIO", "NonFiniteWeights", "atomic_save", "step_checkpoints",
           "remove_orphans"]

STEP_FILE = re.compile(r"step=(\d+)\.ckpt")
TEMP_FILE = re.compile(r".+\.ckpt\.(\d+)\.tmp")


def _temp_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.{os.getpid()}.tmp")


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (the entry lives in the directory, not the file)."""
    with contextlib.suppress(OSError):  # some filesystems refuse O_RDONLY fsync on directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(target: Path, write) -> None:
    """`write(tmp)` fills a temporary file beside `target`, which then replaces `target` by one
    rename, made durable by fsyncing the directory; the temporary file goes if anything fails."""
    tmp = _temp_path(target)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _write_synced(tmp: Path, fill) -> None:
    """`fill(f)` writes the open file `tmp`, which is then flushed and fsynced."""
    with open(tmp, "wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_save(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """`torch.save` to a temporary file beside `path`, fsynced, then renamed over `path`: a reader sees
    the old file or the new one, never a part of one, whenever the writer dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path.parent)
    _swap_in(path, lambda tmp: _write_synced(tmp, lambda f: torch.save(checkpoint, f)))


def _atomic_link(source: Path, target: Path) -> None:
    """`target` becomes the file `source` is (a hard link; a copy where links are not supported),
    swapped in atomically like `atomic_save`."""

    def link(tmp: Path) -> None:
        try:
            os.link(source, tmp)
        except OSError:
            with open(source, "rb") as src:
                _write_synced(tmp, lambda dst: shutil.copyfileobj(src, dst))

    _swap_in(target, link)


def step_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The `step=<N>.ckpt` files in `directory`, newest (highest N) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), directory / name) for name in os.listdir(directory)
             if (m := STEP_FILE.fullmatch(name))]
    return [path for _, path in sorted(found, reverse=True)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def remove_orphans(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed saves left in `directory` (`*.ckpt.<pid>.tmp` of a
    process that is gone; on a shared filesystem, a pid is checked on this host only)."""
    directory = Path(directory)
    removed = []
    for name in os.listdir(directory) if directory.is_dir() else []:
        m = TEMP_FILE.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
                removed.append(directory / name)
    return removed


class NonFiniteWeights(UserError):
    """A checkpoint about to be written holds inf/NaN weights."""

    def __init__(self, path: str | os.PathLike, names: list[str], step: Any):
        self.names = names
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        super().__init__(f"refusing to save {path}: the weights hold inf/NaN ({shown}) at step {step}; "
                         "the run diverged, lower the learning rate (optimizer.lr=...) and train again")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with local files written by `atomic_save`, refusing non-finite
    weights; remote URLs (s3://, ...) go through Lightning's fsspec path as before."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if bad := nonfinite(checkpoint.get("state_dict", {}).items()):
            raise NonFiniteWeights(path, bad, checkpoint.get("global_step"))
        if storage_options is not None or ("://" in str(path) and not str(path).startswith("file://")):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save(checkpoint, str(path).removeprefix("file://"))


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint with `keep_last_k` step files beside `last.ckpt` (see the module docstring)."""

    def __init__(self, *args: Any, keep_last_k: int = 2, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if keep_last_k < 0:
            raise UserError(f"callbacks.checkpoint.keep_last_k={keep_last_k}: must be 0 or more")
        self.keep_last_k = keep_last_k
        self.last_good_path: str | None = None  # the last checkpoint this run wrote

    def last_good(self, trainer) -> str | None:
        """The newest checkpoint known good: this run's last save, else the one it resumed from."""
        return self.last_good_path or (str(trainer.ckpt_path) if trainer.ckpt_path else None)

    def save_last_now(self, trainer) -> str:
        """Write `last.ckpt` at the current step (unless this step is saved already); its path."""
        if self._last_global_step_saved != trainer.global_step or not self.last_good_path:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        return self.last_model_path

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        # Every rank checks its own weights, so that all of them stop (only rank 0 writes).
        if bad := nonfinite(module_tensors(trainer.lightning_module)):
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise diverged(f"the weights ({shown})", "inf/NaN", trainer.global_step, self.last_good(trainer))
        super()._save_checkpoint(trainer, filepath)

    def _save_last_checkpoint(self, trainer, monitor_candidates: dict) -> None:
        if not self.save_last or self.save_last == "link" or self.keep_last_k < 1:
            super()._save_last_checkpoint(trainer, monitor_candidates)
            self.last_good_path = self.last_model_path
            return
        last = Path(self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST))
        step = last.with_name(f"step={trainer.global_step}.ckpt")
        self.last_model_path = str(last)  # before saving: it is part of the saved state
        self._save_checkpoint(trainer, str(step))
        if trainer.is_global_zero:
            _atomic_link(step, last)
            for old in step_checkpoints(last.parent)[self.keep_last_k:]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(old)
        self.last_good_path = str(last)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == trainer.max_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        if self._last_global_step_saved != trainer.global_step:  # stopped before max_steps (max_epochs, ...)
            super().on_train_end(trainer, pl_module)
