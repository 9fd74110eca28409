"""Test driver (tests/test_atomic_checkpoints.py): training runs killed with SIGKILL at every step of
one checkpoint save.

    python kill_during_save.py <base directory> <n: kill during the n-th save> <train overrides ...>

The imports are paid once; each run is a forked child that composes the config (tests/helpers.py,
like the CLI) and trains, so a run costs a training, not an interpreter start. The steps of a save
are the file-system calls callbacks/checkpoint.py makes (through its `os`, replaced here by a
counting proxy) and the chunks of the serialized checkpoint (`torch.save` writes it in 2 flushed
chunks, so a kill between them leaves a half-written file on disk). Child j sends itself SIGKILL
right *before* the j-th step of the n-th save: nothing can catch it or clean up after it, exactly
as an external `kill -9` landing there. Children are started for j = 1, 2, ... until one finishes
(j past the last step); that run is the uninterrupted reference.

Prints one JSON object: {"events": [the uninterrupted run's steps, from the n-th save on],
"runs": [{"kill_at": j, "status": "SIGKILL" | "exit 0", "dir": its run directory}, ...]}.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import gen_runner.callbacks.checkpoint as checkpoint_module  # noqa: E402
from gen_runner.tasks.train import train  # noqa: E402
from helpers import compose_config  # noqa: E402

CHUNKS = 2
SAVE_START = f"write chunk 1/{CHUNKS}"
EVENTS: list[str] = []  # this child's steps, from the n-th save on
SAVES = 0
KILL_SAVE = KILL_AT = 0


def event(what: str) -> None:
    global SAVES
    SAVES += what.startswith(SAVE_START)
    if SAVES >= KILL_SAVE:
        EVENTS.append(what)
        if len(EVENTS) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


class CountingOs:
    """`os` for callbacks/checkpoint.py, with each durable step of a save an event."""

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        event("fsync")
        return os.fsync(fd)

    def replace(self, src, dst):
        event(f"replace {Path(src).name} -> {Path(dst).name}")
        return os.replace(src, dst)

    def link(self, src, dst):
        event(f"link {Path(src).name} -> {Path(dst).name}")
        return os.link(src, dst)

    def unlink(self, path):
        if os.path.exists(path):
            event(f"unlink {Path(path).name}")
        return os.unlink(path)


_save = torch.save


def chunked_save(obj, f, *args, **kwargs):
    if not hasattr(f, "write"):
        return _save(obj, f, *args, **kwargs)
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    size = -(-len(data) // CHUNKS)
    for i in range(CHUNKS):
        event(f"write chunk {i + 1}/{CHUNKS} of {Path(getattr(f, 'name', '?')).name}")
        f.write(data[i * size:(i + 1) * size])
        f.flush()


def run(out: Path, kill_save: int, kill_at: int, overrides: list[str]) -> str:
    global KILL_SAVE, KILL_AT
    out.mkdir(parents=True)
    pid = os.fork()
    if pid == 0:  # the child: train, killed at its step
        KILL_SAVE, KILL_AT = kill_save, kill_at
        torch.set_num_threads(1)  # no OpenMP pool inherited across fork
        checkpoint_module.os = CountingOs()
        torch.save = chunked_save
        code = 0
        with open(out / "driver.log", "w") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                train(compose_config("train", overrides, out))
            except BaseException as e:  # noqa: BLE001
                print(repr(e), flush=True)
                code = 1
            (out / "events.json").write_text(json.dumps(EVENTS))
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"


if __name__ == "__main__":
    base, kill_save, overrides = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    runs = []
    for j in range(1, 100):
        status = run(base / f"kill{j}", kill_save, j, overrides)
        runs.append({"kill_at": j, "status": status, "dir": str(base / f"kill{j}")})
        if status != "SIGKILL":
            break
    print(json.dumps({"events": json.loads((base / f"kill{j}" / "events.json").read_text()), "runs": runs}))
