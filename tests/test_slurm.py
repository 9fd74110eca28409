"""SLURM sweeps and Optuna searches (issue 16, items 1 and 4), without a cluster: the sbatch script
submitit writes for hydra/launcher=slurm (its own builder, `sbatch`/`srun` stubbed), a 2-job sweep
through submitit's local executor (hydra/launcher=slurm_local), the objective a search reads, and an
Optuna search killed after 2 of 3 trials and resumed. The extras' tests skip without the extras."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from helpers import FAST, read_metrics, run_cli

TOY = ["data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
TINY_GAN = ["model=gan", "data=ring8", "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]",
            *TOY, *FAST, "logger=csv"]


def test_the_sbatch_script_takes_its_shape_from_the_trainer(tmp_path, monkeypatch):
    """`trainer=ddp trainer.devices=4 trainer.num_nodes=2` -> 2 nodes of 4 tasks and 4 GPUs, the
    time limit, submitit's signal signal_delay_s before it, requeueable, srun running submitit's
    job, whose pickled callable (hydra-submitit-launcher's) has the `checkpoint` that requeues it."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import submitit.core.core

    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in (("sbatch", 'echo "Submitted batch job 4242"'), ("srun", "exit 0")):
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    monkeypatch.setattr(submitit.core.core.Job, "results", lambda self: [types.SimpleNamespace(return_value=None)])
    sweep = tmp_path / "sweep"
    run_cli("train", "--multirun", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=240", "seed=0,1", f"hydra.sweep.dir={sweep}",
            cwd=tmp_path, env={"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"})
    script = (sweep / ".submitit" / "4242" / "4242_submission.sh").read_text()
    flags = {line for line in script.splitlines() if line.startswith("#SBATCH")}
    for flag in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--time=240", "--signal=USR2@120",
                 "--partition=gpu", "--array=0-1%2", "--requeue"):
        assert f"#SBATCH {flag}" in flags, script
    command = script.strip().splitlines()[-1]
    assert command.startswith("srun ") and command.endswith(f"-m submitit.core._submit {sweep}/.submitit/%j")
    with open(sweep / ".submitit" / "4242_1" / "4242_1_submitted.pkl", "rb") as f:
        job = pickle.load(f)
    assert callable(job.function.checkpoint) and "seed=1" in job.args[0]


def test_tasks_per_node_cannot_be_all_visible_gpus(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run_cli("train", "hydra/launcher=slurm", "trainer=ddp", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "trainer.devices=-1" in proc.stderr, proc.stderr


def test_train_returns_the_objective_a_search_optimizes(tmp_path):
    """optimized_metric=reverse_kl: gen-runner eval's 2-D mode metric on the val split at the final
    step, returned by the task (what Hydra's Optuna sweeper reads) and written to metrics.json."""
    from gen_runner.cli import _run_task
    from helpers import compose_config

    cfg = compose_config("train", [*TINY_GAN, "trainer.max_steps=2", "optimized_metric=reverse_kl",
                                   "eval.num_samples=500"], tmp_path)
    value = _run_task("train", cfg)
    metrics = read_metrics(tmp_path)
    assert value == metrics["reverse_kl"]
    assert metrics["protocol"]["objective"] == "reverse_kl on the val split at the final step (the last checkpoint)"
    proc = run_cli("train", *TINY_GAN, "trainer.max_steps=1", "optimized_metric=reverse_kl", "eval.split=test",
                   cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "pass eval.split=val" in proc.stderr


@pytest.mark.slow
def test_a_two_job_sweep_on_submitits_local_executor(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "gen_runner", "train", "--multirun", "hydra/launcher=slurm_local",
                           *TINY_GAN, "trainer.max_steps=3", "seed=0,1", f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for num, seed in ((0, 0), (1, 1)):
        run = sweep / f"{num}_gan-ring8"
        metrics = read_metrics(run)
        assert metrics["protocol"]["seed"] == seed and metrics["protocol"]["steps"] == 3
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "csv" / "metrics.csv").is_file()
    assert read_metrics(sweep / "0_gan-ring8")["train/d_loss"] != read_metrics(sweep / "1_gan-ring8")["train/d_loss"]


@pytest.mark.slow
def test_an_optuna_search_killed_after_two_trials_resumes_to_three(tmp_path):
    """hparams_search=flow_checkerboard with 3 trials in a sqlite study, SIGKILLed once trial 2 has
    started (trials 0 and 1 recorded); the same command again runs the missing one: 3 complete trials
    in the storage, and the best parameters and value printed."""
    optuna = pytest.importorskip("optuna")
    command = [sys.executable, "-m", "gen_runner", "train", "--multirun", "hparams_search=flow_checkerboard",
               "hydra.sweeper.n_trials=3", "trainer.max_steps=10", "data.num_train=500", "data.num_val=200",
               "data.num_test=200", "model.flow.vector.num_layers=2", "model.flow.vector.hidden=choice([8],[16])",
               "callbacks=minimal", "logger=csv", "trainer.enable_model_summary=false"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if "\t#2 : " in line:  # the sweeper launches trial 2 after recording trials 0 and 1
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        proc.kill()
    storage = f"sqlite:///{tmp_path}/outputs/optuna/flow_checkerboard.db"
    study = optuna.load_study(study_name="flow_checkerboard", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "study flow_checkerboard has 2 of 3 trials done; running 1 more" in again.stdout
    study = optuna.load_study(study_name="flow_checkerboard", storage=storage)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    output = again.stdout + again.stderr
    assert f"Best parameters: {study.best_params}" in output and f"Best value: {study.best_value}" in output
