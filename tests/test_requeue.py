"""Preemption on SLURM (issue 16, item 2): the requeue signal (SIGUSR1/SIGUSR2) saves last.ckpt at the
step it arrived in and only then hands over to submitit's requeueing handler; the requeued job (the
same command, the same run directory) or `gen-runner train resume=<run dir>` continues in place: the
same directory and TensorBoard run, each step once, the same weights and per-step losses as a run
that was never stopped; an override that would change the run is refused in one line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gen_runner.checkpoints import load_checkpoint
from gen_runner.tasks.train import train
from helpers import FAST, compose_config, run_cli, run_directory
from test_preemption import assert_same_training_state

TESTS = Path(__file__).resolve().parent
TOY = ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
RUN = ["model=gan", "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]", *TOY, *FAST,
       "seed=3", "callbacks.checkpoint.every_n_train_steps=5"]
STOPPED = re.compile(r"gen-runner: stopped by (SIG\w+): saved (\S+) at step (\d+); resume with: (.+)")


def scalars(run: Path, tag: str = "train/d_loss") -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar as TensorBoard shows it (events purged on resume dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_requeue_signal_saves_then_requeues_and_the_rerun_continues_in_place(tmp_path):
    """SIGUSR2 (submitit's) inside step 4, the periodic save at 5: the stand-in for submitit's handler
    runs after last.ckpt holds step 4 and exits like it (-1); the same job run again in the same
    directory continues from step 4 to 8 and equals a run that was never stopped."""
    calls = []

    def submitit_handler(signum, frame):  # what submitit's checkpoint_and_try_requeue does on rank 0
        calls.append((signum, load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"]))
        sys.exit(-1)

    run = tmp_path / "sweep" / "0_gan-ring8"
    run.mkdir(parents=True)
    job = [*RUN, "trainer.max_steps=8", f"+callbacks.probe={{_target_:probes.StepProbe,at:4,send:{int(signal.SIGUSR2)}}}"]
    before = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        with pytest.raises(SystemExit) as stop:
            train(compose_config("train", job, run))
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert stop.value.code == -1 and calls == [(signal.SIGUSR2, 4)]

    train(compose_config("train", job, run))  # the requeued job: same overrides, same directory
    straight = tmp_path / "straight"
    straight.mkdir()
    train(compose_config("train", job[:-1], straight))
    assert_same_training_state(load_checkpoint(straight / "checkpoints" / "last.ckpt"),
                               load_checkpoint(run / "checkpoints" / "last.ckpt"))
    assert scalars(run) == scalars(straight) and [s for s, _ in scalars(run)] == list(range(8))

    # resume= of a finished run: nothing to train; an override that changes the run: one line.
    proc = run_cli("train", f"resume={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no .hydra/overrides.yaml" in proc.stderr  # compose_config wrote none
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in job))
    proc = run_cli("train", f"resume={run}", "model.generator.mlp.hidden=[16]", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"gen-runner: error: resuming {run}: model.generator.mlp.hidden=[16] would "
                                   "change the run (it was trained with [8]); drop that override (a resume may "
                                   "change only trainer.max_steps)")
    proc = run_cli("train", f"resume={run}", cwd=tmp_path)
    assert "trained to step 8 already" in proc.stdout and run_directory(proc, tmp_path) == run


@pytest.mark.slow
def test_sigusr1_then_sigterm_to_a_real_process_and_the_same_command_resumes_in_place(tmp_path):
    """`python -m gen_runner train` in a fixed run directory (as a sweep job's), SIGUSR1 inside step 7
    and SIGTERM after it, as SLURM sends them: step 7 is saved (periodic saves at 5, 10), exit 138,
    the one line says `resume=`; the same command again continues to 12 in place, equal to an
    uninterrupted run in weights, optimizer state and every logged loss."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "gen_runner", "train", *RUN, "trainer.max_steps=12", f"hydra.run.dir={run}",
               "+trainer.enable_progress_bar=false", "+callbacks.probe={_target_:probes.StepProbe,at:7,stall:30}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        for line in proc.stdout:
            if line.strip() == "step 7":
                break
        proc.send_signal(signal.SIGUSR1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGUSR1, err
    assert "step 8" not in out
    stopped = [m for line in err.splitlines() if (m := STOPPED.fullmatch(line))]
    assert len(stopped) == 1 and stopped[0].group(1, 3) == ("SIGUSR1", "7"), err
    assert stopped[0].group(4) == f"gen-runner train resume=run trainer.max_steps=12"
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 7

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "continuing run in place from step 7" in again.stdout
    straight = tmp_path / "straight"
    straight.mkdir()
    train(compose_config("train", [*RUN, "trainer.max_steps=12"], straight))
    assert_same_training_state(load_checkpoint(straight / "checkpoints" / "last.ckpt"),
                               load_checkpoint(run / "checkpoints" / "last.ckpt"))
    for tag in ("train/d_loss", "train/g_loss"):
        assert scalars(run, tag) == scalars(straight, tag)
        assert [s for s, _ in scalars(run, tag)] == list(range(12))


@pytest.mark.slow
def test_a_two_process_ddp_cpu_run_resumed_after_sigterm(tmp_path):
    """trainer=ddp_cpu (2 gloo processes) gets SIGTERM inside step 4: every rank stops after that step,
    last.ckpt holds it, exit 143; `resume=<run dir>` finishes the run in the same directory."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    base = [*RUN, "trainer=ddp_cpu", "trainer.max_steps=8", f"paths.root={tmp_path / 'outputs'}",
            "+trainer.enable_progress_bar=false"]
    proc = subprocess.Popen([sys.executable, "-m", "gen_runner", "train", *base,
                             "+callbacks.probe={_target_:probes.StepProbe,at:4,stall:60}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if "step 4" in line:  # (the ranks share stdout: "step 4step 4")
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    stopped = [m for line in err.splitlines() if (m := STOPPED.fullmatch(line))]
    assert stopped and stopped[0].group(3) == "4", err[-3000:]
    run = tmp_path / stopped[0].group(4).split("resume=")[1].split()[0]
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 4

    again = subprocess.run([sys.executable, "-m", "gen_runner", "train", f"resume={run}"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 8
    assert [s for s, _ in scalars(run)] == list(range(8))
