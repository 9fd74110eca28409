"""Test helpers: configs composed through Hydra's compose API, runs in-process and via the CLI."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
import torch
from omegaconf import DictConfig

from gen_runner.cli import register_resolvers
from gen_runner.configs import job_config
from gen_runner.schema import register

register()
register_resolvers()

# Small, fast settings for in-process runs.
FAST = ["trainer.log_every_n_steps=1", "trainer.enable_model_summary=false", "callbacks=minimal"]


def compose_config(command: str, overrides: list[str], out: Path) -> DictConfig:
    """Compose `command`'s config like the CLI does, with Hydra's runtime set to write into `out`."""
    return job_config(command, overrides, out)


def run_cli(*args: str, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`gen-runner <args>` run in this process through the console script's own entry point
    (`gen_runner.cli.main`, argv, working directory, environment, exit code, stdout and stderr as a
    user sees them), without paying Lightning's import in a new interpreter. Multi-process runs
    (DDP, which re-launches the command line) need `run_subprocess`."""
    import contextlib
    import io

    from gen_runner.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update({"HYDRA_FULL_ERROR": "0", **(env or {})})
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
    proc = subprocess.CompletedProcess(["gen-runner", *args], code, stdout.getvalue(), stderr.getvalue())
    if check and code != 0:
        raise AssertionError(f"gen-runner {' '.join(args)} failed ({code}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_subprocess(*args: str, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m gen_runner <args>` in a subprocess, as a user would run it."""
    proc = subprocess.run([sys.executable, "-m", "gen_runner", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"gen-runner {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_directory(proc: subprocess.CompletedProcess, cwd: Path) -> Path:
    """The path of the final `Run directory: <path>` line, which must be the last line printed."""
    last = proc.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"Run directory: (.+)", last)
    assert match, f"last line is not the run directory: {last!r}"
    return cwd / match.group(1)


def read_metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


def reached(loss: torch.Tensor, nets: dict[str, torch.nn.Module]) -> set[str]:
    """The names of the nets whose parameters get a nonzero gradient from `loss`."""
    grads = {name: torch.autograd.grad(loss, list(net.parameters()), allow_unused=True, retain_graph=True)
             for name, net in nets.items()}
    return {name for name, gs in grads.items() if any(g is not None and g.abs().sum() > 0 for g in gs)}

