"""SIGTERM and SIGINT (issue 12, item 3): the step in progress finishes, last.ckpt is written at that
step, one line says how to resume, the exit status is 143 / 130, and the resume is exact."""
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
from helpers import FAST

TESTS = Path(__file__).resolve().parent
TOY = ["data=ring8", "data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
RUN = ["model=gan", "model.generator.mlp.hidden=[16]", "model.discriminator.mlp.hidden=[16]", *TOY, "logger=csv",
       *FAST, "seed=3", "callbacks.checkpoint.every_n_train_steps=5"]
STOPPED = re.compile(r"gen-runner: stopped by (SIGTERM|SIGINT): saved (\S+) at step (\d+); resume with: (.+)")


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pa, pb in zip(sa["state"].values(), sb["state"].values(), strict=True):
            for k in pa:
                torch.testing.assert_close(pb[k], pa[k], rtol=0, atol=0)


def test_sigterm_saves_the_step_it_stopped_at_exits_143_and_resumes_exactly(tmp_path, make_config):
    """A real `python -m gen_runner train`, sent SIGTERM in the middle of step 7 (a probe callback
    stalls there); periodic checkpoints every 5 steps, so only the stop can have saved step 7."""
    probe = "+callbacks.probe={_target_:probes.StepProbe,at:7,stall:30}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gen_runner", "train", *RUN, "trainer.max_steps=12", probe,
         "+trainer.enable_progress_bar=false", f"paths.root={tmp_path / 'outputs'}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "step 7":
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    out = "".join(lines) + out
    assert proc.returncode == 143, err
    assert "step 8" not in out  # the run stopped after the step it was in
    stopped = [m for line in err.splitlines() if (m := STOPPED.fullmatch(line))]
    assert len(stopped) == 1, err
    name, saved, step, resume = stopped[0].groups()
    assert (name, int(step)) == ("SIGTERM", 7)
    saved = tmp_path / saved
    assert saved.name == "last.ckpt" and load_checkpoint(saved)["global_step"] == 7
    assert resume == f"gen-runner train resume={Path(stopped[0].group(2)).parent.parent} trainer.max_steps=12"
    assert out.strip().splitlines()[-1].startswith("Run directory: ")

    straight = make_config("train", *RUN, "trainer.max_steps=12")
    train(straight)
    resumed = make_config("train", *RUN, "trainer.max_steps=12", f"ckpt_path={saved}")
    train(resumed)
    assert_same_training_state(load_checkpoint(f"{straight.paths.output_dir}/checkpoints/last.ckpt"),
                               load_checkpoint(f"{resumed.paths.output_dir}/checkpoints/last.ckpt"))


def test_ctrl_c_finishes_the_step_saves_it_and_exits_130(make_config, capsys):
    """SIGINT (Ctrl-C) sent to this very process inside step 4: no KeyboardInterrupt in the middle of
    the step; step 4 is saved and the handlers are put back afterwards."""
    before = signal.getsignal(signal.SIGINT)
    cfg = make_config("train", *RUN, "trainer.max_steps=12",
                      f"+callbacks.probe={{_target_:probes.StepProbe,at:4,send:{int(signal.SIGINT)}}}")
    with pytest.raises(SystemExit) as stop:
        train(cfg)
    assert stop.value.code == 130
    assert signal.getsignal(signal.SIGINT) is before
    err = capsys.readouterr().err
    stopped = [m for line in err.splitlines() if (m := STOPPED.fullmatch(line))]
    assert len(stopped) == 1 and stopped[0].group(1, 3) == ("SIGINT", "4"), err
    ckpt = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert ckpt["global_step"] == 4
