"""trainer.deterministic=true with a seed (issue 16, item 5): two CPU runs give bit-identical metrics,
weights and samples (a GAN whose discriminator uses dropout, so the RNG is drawn from every step)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gen_runner.checkpoints import load_checkpoint
from gen_runner.tasks.train import train
from helpers import compose_config, read_metrics

RUN = ["model=gan", "data=ring8", "data.num_train=200", "data.num_val=50", "data.num_test=50", "data.batch_size=50",
       "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]", "model.discriminator.mlp.dropout=0.5",
       "trainer.max_steps=4", "trainer.deterministic=true", "seed=11", "trainer.log_every_n_steps=1",
       "trainer.enable_model_summary=false", "callbacks.progress_bar=null", "callbacks.samples.num_points=200",
       "logger=csv"]


def test_two_deterministic_runs_are_bit_identical(tmp_path):
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        train(compose_config("train", RUN, out))
        runs.append(out)
    a, b = runs
    metrics_a, metrics_b = read_metrics(a), read_metrics(b)
    assert metrics_a == metrics_b and "train/d_loss" in metrics_a
    assert (a / "csv" / "metrics.csv").read_bytes() == (b / "csv" / "metrics.csv").read_bytes()
    ckpt_a, ckpt_b = (load_checkpoint(r / "checkpoints" / "last.ckpt")["state_dict"] for r in runs)
    for key, value in ckpt_a.items():
        assert torch.equal(value, ckpt_b[key]), key
    samples = sorted(p.relative_to(a) for p in (a / "samples").rglob("*") if p.is_file())
    assert samples and all((a / p).read_bytes() == (b / p).read_bytes() for p in samples)


@pytest.mark.slow
def test_model_compile_trains_a_few_steps_on_cpu(tmp_path):
    """model.compile=true (torch.compile of the nets, ~20 s of compilation on a CPU): the run trains and
    its checkpoint has the same weight names as an uncompiled one."""
    runs = {}
    for flag in ("false", "true"):
        out = tmp_path / flag
        out.mkdir()
        plain = [a for a in RUN if not a.startswith("callbacks.")]
        train(compose_config("train", [*plain, "trainer.max_steps=2", f"model.compile={flag}", "callbacks=minimal"], out))
        runs[flag] = load_checkpoint(out / "checkpoints" / "last.ckpt")["state_dict"]
    assert list(runs["true"]) == list(runs["false"])
