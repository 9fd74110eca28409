"""Non-finite weights and values (issue 12, item 4): never saved, refused by eval and sample, and
metrics.json stays strict JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gen_runner.callbacks.guard import DivergenceGuard
from gen_runner.checkpoints import load_checkpoint
from gen_runner.errors import UserError
from gen_runner.finite import nonfinite
from gen_runner.tasks.common import write_metrics
from gen_runner.tasks.train import train
from helpers import FAST, run_cli

FLOW = ["model=realnvp", "model.flow.vector.num_layers=2", "model.flow.vector.hidden=[16]", "data=moons",
        "data.num_train=200", "data.num_val=50", "data.num_test=50", "data.batch_size=50", *FAST,
        "callbacks.checkpoint.every_n_train_steps=1"]
BLOW_UP = ["optimizer=sgd", "optimizer.lr=3e38", "optimizer.momentum=0"]


def test_an_update_that_makes_the_weights_inf_is_never_saved(make_config):
    """The issue's reproduction: the loss of step 1 is finite, its update is not. The save refuses,
    and the message says no checkpoint was written (not that last.ckpt is good)."""
    cfg = make_config("train", *FLOW, *BLOW_UP, "trainer.max_steps=5")
    with pytest.raises(UserError, match=r"the weights \(.+\) became inf/NaN at step 1; no checkpoint was written"):
        train(cfg)
    assert not list(Path(cfg.paths.output_dir).rglob("*.ckpt"))


def test_the_message_names_the_real_last_good_checkpoint(make_config):
    """Weights made inf after a finite loss (a probe callback does what an overflowing update does),
    between the guard's weight checks: the save refuses and names the step before, or, in a resumed
    run that has saved nothing yet, the checkpoint it resumed from."""
    poison = "+callbacks.poison={_target_:probes.Poison,at:3}"
    cfg = make_config("train", *FLOW, "trainer.max_steps=5", poison)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=rf"became inf/NaN at step 3; the last good checkpoint is {last}\. "
                                        rf".* resume with ckpt_path={last}$"):
        train(cfg)
    assert load_checkpoint(last)["global_step"] == 2  # load_checkpoint refuses non-finite weights

    resumed = make_config("train", *FLOW, "trainer.max_steps=5", f"ckpt_path={last}", poison)
    with pytest.raises(UserError, match=rf"at step 3; the last good checkpoint is {last}\."):
        train(resumed)
    assert not list(Path(resumed.paths.output_dir).rglob("*.ckpt"))


def test_the_guard_checks_the_weights_every_n_steps():
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    guard = DivergenceGuard(every_n_steps=1, weights_every_n_steps=2)
    last = SimpleNamespace(last_good=lambda trainer: "run/checkpoints/last.ckpt")
    trainer = SimpleNamespace(global_step=3, checkpoint_callback=last)
    module[1].running_var[0] = math.inf  # a buffer
    guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(1.0)}, None, 0)  # step 3: not checked
    trainer.global_step = 4
    with pytest.raises(UserError, match=r"the weights \(1\.running_var\) became inf/NaN at step 4; "
                                        r"the last good checkpoint is run/checkpoints/last\.ckpt"):
        guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(1.0)}, None, 0)


def test_nonfinite_names_each_bad_tensor_and_skips_integers():
    ok, nan, inf = torch.ones(3), torch.tensor([0.0, math.nan]), torch.full((2, 2), -math.inf, dtype=torch.float16)
    assert nonfinite([("ok", ok), ("count", torch.tensor(7)), ("empty", torch.empty(0))]) == []
    assert nonfinite([("ok", ok), ("nan", nan), ("inf", inf)]) == ["nan", "inf"]
    assert nonfinite([("big", torch.full((4,), 3e38))]) == []  # large but finite: no overflow


@pytest.fixture(scope="module")
def poisoned_checkpoint(tmp_path_factory):
    """A real checkpoint of a 2-step realnvp run, with one weight set to NaN."""
    root = tmp_path_factory.mktemp("poisoned")
    run_cli("train", *FLOW, "trainer.max_steps=2", f"paths.root={root}", cwd=root)
    good = next(root.rglob("last.ckpt"))
    ckpt = torch.load(good, weights_only=True)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name].view(-1)[0] = math.nan
    bad = root / "nan.ckpt"
    torch.save(ckpt, bad)
    return root, good, bad, name


@pytest.mark.parametrize("command", ["eval", "sample"])
def test_eval_and_sample_refuse_nonfinite_weights_in_one_line(poisoned_checkpoint, command):
    root, _, bad, name = poisoned_checkpoint
    before = sorted(root.rglob("*"))
    proc = run_cli(command, f"ckpt_path={bad}", f"paths.root={root}", cwd=root, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds non-finite weights" in lines[0] and name in lines[0], proc.stderr
    assert sorted(root.rglob("*")) == before  # no run directory left behind


def test_eval_writes_strict_json_with_null_for_an_infinite_nll(poisoned_checkpoint, tmp_path):
    """A finite model scoring a point far outside its support: nll is inf, written as null and noted."""
    root, good, _, _ = poisoned_checkpoint
    np.save(tmp_path / "far.npy", np.full((200, 2), 3e38, dtype=np.float32))
    proc = run_cli("eval", f"ckpt_path={good}", "data=tensor_file", f"data.path={tmp_path / 'far.npy'}",
                   "data.batch_size=10",
                   "eval.split=all", f"paths.root={tmp_path / 'out'}", cwd=tmp_path)
    metrics_path = next((tmp_path / "out").rglob("metrics.json"))

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    metrics = json.loads(metrics_path.read_text(), parse_constant=refuse)
    assert "nll" in metrics and metrics["nll"] is None, (metrics, proc.stdout)
    assert metrics["protocol"]["non_finite"]["nll"].startswith(("inf", "nan"))


def test_write_metrics_is_strict_json(tmp_path):
    write_metrics(tmp_path, {"nll": math.inf, "bpd": math.nan, "modes": 8, "fid": 1.5},
                  {"command": "eval", "tail": [1.0, -math.inf]})
    text = (tmp_path / "metrics.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    assert data["nll"] is None and data["bpd"] is None and data["modes"] == 8 and data["fid"] == 1.5
    assert data["protocol"]["tail"] == [1.0, None]
    assert set(data["protocol"]["non_finite"]) == {"nll", "bpd", "protocol.tail[1]"}
