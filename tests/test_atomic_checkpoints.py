"""A checkpoint cannot be torn (issue 12, item 2): every save goes to a temporary file beside its
target, fsynced and renamed over it; `keep_last_k` step files stay beside last.ckpt; a resume from
an unreadable last.ckpt falls back to the newest good one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gen_runner.callbacks.checkpoint import atomic_save, remove_orphans
from gen_runner.errors import UserError
from gen_runner.tasks.train import train
from helpers import FAST, run_cli

TESTS = Path(__file__).resolve().parent
TOY = ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
TINY_GAN = ["model=gan", "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]", *TOY,
            "logger=csv", *FAST]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_kill_at_any_step_of_a_save_leaves_loadable_checkpoints(tmp_path, make_config):
    """SIGKILL before each file-system step of the third save (a step file, last.ckpt swapped to it,
    the oldest step file pruned): the checkpoints there always load, last.ckpt holds step 2 until
    the rename that makes it step 3, at most one *.tmp is left (none in $TMPDIR), and a resume
    removes it."""
    tmpdir = tmp_path / "TMPDIR"
    tmpdir.mkdir()
    proc = subprocess.run(
        [sys.executable, str(TESTS / "kill_during_save.py"), str(tmp_path / "runs"), "3", *TINY_GAN,
         "trainer.max_steps=3", "callbacks.checkpoint.every_n_train_steps=1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmpdir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    events, runs = result["events"], result["runs"]
    killed = [run for run in runs if run["status"] == "SIGKILL"]
    assert runs[-1]["status"] == "exit 0", runs[-1]
    assert len(killed) == len(events) >= 9, events  # a kill before every step of the save
    swap = next(i for i, e in enumerate(events) if e.startswith("replace last.ckpt."))
    with_tmp = None
    for run in killed:
        directory = Path(run["dir"]) / "checkpoints"
        names = sorted(os.listdir(directory))
        temps = [n for n in names if n.endswith(".tmp")]
        assert len(temps) <= 1, (run, names)
        for name in names:
            if name.startswith("step=") and name.endswith(".ckpt"):
                assert load(directory / name)["global_step"] == int(name.removeprefix("step=").split(".")[0])
        swapped = run["kill_at"] - 1 > swap  # event k-1 (0-based) never ran
        assert load(directory / "last.ckpt")["global_step"] == (3 if swapped else 2), (run, events)
        assert load(directory / "step=2.ckpt")["global_step"] == 2
        if temps and with_tmp is None:
            with_tmp = directory
    leftovers = [p for p in tmpdir.rglob("*") if p.is_file()]
    assert not leftovers, leftovers  # nothing went through $TMPDIR

    assert with_tmp is not None
    cfg = make_config("train", *TINY_GAN, "trainer.max_steps=4", f"ckpt_path={with_tmp / 'last.ckpt'}")
    train(cfg)
    assert not [n for n in os.listdir(with_tmp) if n.endswith(".tmp")]
    assert load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["global_step"] == 4


def test_last_k_step_files_are_kept_and_a_torn_last_ckpt_falls_back(tmp_path, make_config):
    cfg = make_config("train", *TINY_GAN, "trainer.max_steps=5", "callbacks.checkpoint.every_n_train_steps=1")
    train(cfg)
    directory = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(os.listdir(directory)) == ["last.ckpt", "step=4.ckpt", "step=5.ckpt"]  # keep_last_k: 2
    assert (directory / "last.ckpt").samefile(directory / "step=5.ckpt")  # a link: no second copy

    # Torn in place (a disk or copy error): last.ckpt and step=5.ckpt, one file, are both cut short.
    with open(directory / "last.ckpt", "r+b") as f:
        f.truncate(100)
    proc = run_cli("train", *TINY_GAN, "trainer.max_steps=6", f"ckpt_path={directory / 'last.ckpt'}",
                   f"paths.root={tmp_path / 'resumed'}", cwd=tmp_path)
    warnings = [line for line in proc.stdout.splitlines() if "resuming from" in line]
    assert len(warnings) == 1 and "cannot read checkpoint" in warnings[0], proc.stdout
    assert warnings[0].split("resuming from ")[1].startswith(str(directory / "step=4.ckpt"))
    resumed = next((tmp_path / "resumed").rglob("last.ckpt"))
    assert load(resumed)["global_step"] == 6


def test_a_torn_checkpoint_with_nothing_beside_it_is_one_clear_error(tmp_path, make_config):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    cfg = make_config("train", *TINY_GAN, "trainer.max_steps=2", f"ckpt_path={bad}")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        train(cfg)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_save({"global_step": 1}, target)
    with pytest.raises(Exception):
        atomic_save({"global_step": 2, "bad": lambda: 0}, target)  # cannot be pickled, mid-write
    assert os.listdir(tmp_path) == ["last.ckpt"] and load(target) == {"global_step": 1}

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    orphan = tmp_path / f"step=3.ckpt.{dead}.tmp"
    orphan.write_bytes(b"half")
    mine = tmp_path / f"step=3.ckpt.{os.getpid()}.tmp"  # a save in progress in this process: kept
    mine.write_bytes(b"")
    assert remove_orphans(tmp_path) == [orphan] and mine.exists()


def test_sigkill_at_random_moments_of_slow_writes_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """A forked writer saves step files and swaps last.ckpt to each (as Checkpoint does), through a
    writer slowed to many small flushed chunks; SIGKILL lands at a random moment (seeded). Every time,
    last.ckpt loads and holds the newest step whose swap finished (or the one before), every step file
    loads, at most one *.tmp is left, and remove_orphans clears it."""
    import io
    import random
    import signal
    import time

    import gen_runner.callbacks.checkpoint as module

    def slow_write(tmp, fill):
        with open(tmp, "wb") as f:
            buffer = io.BytesIO()
            fill(buffer)
            data = buffer.getvalue()
            for i in range(0, len(data), 4096):
                f.write(data[i:i + 4096])
                f.flush()
                time.sleep(0.0005)
            os.fsync(f.fileno())

    monkeypatch.setattr(module, "_write_synced", slow_write)
    rng = random.Random(16)
    payload = torch.zeros(20_000)  # an 80 kB checkpoint: ~20 chunks, ~10-20 ms a save
    mid_write = 0
    for trial in range(8):
        directory = tmp_path / f"kill{trial}"
        directory.mkdir()
        module.atomic_save({"global_step": 0, "w": payload}, directory / "step=0.ckpt")
        module._atomic_link(directory / "step=0.ckpt", directory / "last.ckpt")
        pid = os.fork()
        if pid == 0:  # the writer: saves until killed
            for step in range(1, 10_000):
                module.atomic_save({"global_step": step, "w": payload + step}, directory / f"step={step}.ckpt")
                module._atomic_link(directory / f"step={step}.ckpt", directory / "last.ckpt")
                (directory / f"swapped.{step}").touch()  # (a name: a kill cannot leave it half-written)
            os._exit(0)
        time.sleep(rng.uniform(0.005, 0.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        swapped = max((int(p.suffix[1:]) for p in directory.glob("swapped.*")), default=0)
        last = load(directory / "last.ckpt")
        assert last["global_step"] in (swapped, swapped + 1), (trial, swapped, last["global_step"])
        assert torch.equal(last["w"], payload + last["global_step"])
        for path in directory.glob("step=*.ckpt"):
            assert load(path)["global_step"] == int(path.stem.removeprefix("step="))
        temps = list(directory.glob("*.tmp"))
        assert len(temps) <= 1
        assert remove_orphans(directory) == temps and not list(directory.glob("*.tmp"))
        mid_write += bool(temps)
    assert mid_write >= 2  # most kills landed inside a write, not between saves
