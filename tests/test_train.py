"""Training in-process through the same task the CLI runs: every model on every data kind it
supports, exact resume, and the divergence guard."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from helpers import FAST, read_metrics
from gen_runner.errors import UserError
from gen_runner.checkpoints import load_checkpoint
from gen_runner.tasks.train import train

TOY = ["data.num_train=400", "data.num_val=100", "data.num_test=100", "data.batch_size=50"]
SMALL_GAN = ["model.generator.mlp.hidden=[32,32]", "model.discriminator.mlp.hidden=[16,16]"]
SMALL_DCGAN = ["model.generator.conv.base_channels=8", "model.discriminator.conv.base_channels=8"]
SMALL_FLOW = ["model.flow.vector.num_layers=2", "model.flow.vector.hidden=[16]",
              "model.flow.image.num_scales=1", "model.flow.image.hidden_channels=8",
              "model.flow.image.num_blocks=1"]


@pytest.fixture
def tensor_files(tmp_path):
    rng = np.random.default_rng(0)
    points = tmp_path / "points.npy"
    np.save(points, rng.normal(size=(300, 2)).astype(np.float32))
    images = tmp_path / "images.npz"
    np.savez(images, x=rng.integers(0, 256, size=(120, 1, 8, 8), dtype=np.uint8), y=rng.integers(0, 10, 120))
    return {"points": points, "images": images}


def data_overrides(kind, files):
    if kind == "toy":
        return ["data=ring8", *TOY]
    if kind == "digits":
        return ["data=digits", "data.batch_size=32"]
    return ["data=tensor_file", f"data.path={files[kind]}", "data.batch_size=20"]


CASES = [
    ("gan", SMALL_GAN, "toy"), ("gan", SMALL_GAN, "digits"), ("gan", SMALL_GAN, "points"),
    ("dcgan", SMALL_DCGAN, "digits"), ("dcgan", SMALL_DCGAN, "images"),
    ("realnvp", SMALL_FLOW, "toy"), ("realnvp", SMALL_FLOW, "digits"), ("realnvp", SMALL_FLOW, "images"),
]


@pytest.mark.parametrize("model, small, kind", CASES, ids=[f"{m}-{k}" for m, _, k in CASES])
def test_each_model_trains_on_each_data_kind(make_config, tensor_files, model, small, kind):
    cfg = make_config("train", f"model={model}", *small, *data_overrides(kind, tensor_files),
                      "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=2", *FAST)
    metrics = train(cfg)
    out = cfg.paths.output_dir
    ckpt = load_checkpoint(f"{out}/checkpoints/last.ckpt")  # weights_only=True
    assert ckpt["global_step"] == 4  # steps are batches, also under manual optimization
    assert ckpt["gen_runner"]["choices"]["model"] == model
    assert all(np.isfinite(v) for v in metrics.values()) and metrics
    written = read_metrics(__import__("pathlib").Path(out))
    assert written["protocol"]["steps"] == 4
    if model == "realnvp":
        assert "val/nll" in written and ("val/bpd" in written) == (kind in ("digits", "images"))
    else:
        assert {"train/d_loss", "train/g_loss"} <= written.keys()


def read_losses(out) -> dict[int, dict[str, float]]:
    """Per-step losses from the CSV logger."""
    rows = {}
    with open(f"{out}/csv/metrics.csv") as f:
        for row in csv.DictReader(f):
            losses = {k: float(v) for k, v in row.items() if k.startswith("train/") and v}
            if losses:
                rows.setdefault(int(row["step"]), {}).update(losses)
    return rows


@pytest.mark.parametrize("model, small, extra, n", [
    ("gan", [*SMALL_GAN, "model.n_critic=2"], [], 15),  # dropout in D draws from the RNG; mid-epoch
    ("gan", SMALL_GAN, [], 16),  # at an epoch boundary
    ("realnvp", SMALL_FLOW, ["trainer.val_check_interval=4"], 15),  # validation between the halves
    # ActNorm's data-dependent initialization must not run again on resume.
    ("glow", ["model.flow.vector.num_layers=2", "model.flow.vector.hidden=[8]"], [], 5),
])
def test_resume_equals_an_uninterrupted_run(make_config, model, small, extra, n):
    """n steps, then resume to 2n == 2n steps straight (epochs of 8 batches)."""
    common = [f"model={model}", *small, "data=ring8", *TOY, "logger=csv", *FAST, "seed=3", *extra]
    full = make_config("train", *common, f"trainer.max_steps={2 * n}")
    train(full)
    first = make_config("train", *common, f"trainer.max_steps={n}")
    train(first)
    first_ckpt = f"{first.paths.output_dir}/checkpoints/last.ckpt"
    second = make_config("train", *common, f"trainer.max_steps={2 * n}", f"ckpt_path={first_ckpt}")
    train(second)

    a = load_checkpoint(f"{full.paths.output_dir}/checkpoints/last.ckpt")
    b = load_checkpoint(f"{second.paths.output_dir}/checkpoints/last.ckpt")
    assert a["global_step"] == b["global_step"] == 2 * n
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(sa["state"].values(), sb["state"].values()):
            for k in pa:
                torch.testing.assert_close(pb[k], pa[k], rtol=0, atol=0)

    straight = read_losses(full.paths.output_dir)
    resumed = read_losses(first.paths.output_dir) | read_losses(second.paths.output_dir)
    assert sorted(resumed) == sorted(straight) == list(range(2 * n))
    for step, losses in straight.items():
        assert resumed[step] == losses, f"step {step}"


def test_resume_refuses_another_model(make_config):
    first = make_config("train", "model=gan", *SMALL_GAN, "data=ring8", *TOY, "trainer.max_steps=2", *FAST)
    train(first)
    other = make_config("train", "model=realnvp", "data=ring8", *TOY,
                        f"ckpt_path={first.paths.output_dir}/checkpoints/last.ckpt")
    with pytest.raises(UserError, match="holds a model=gan run.*pass model=gan"):
        train(other)


def test_divergence_stops_cleanly_and_keeps_the_last_good_checkpoint(make_config, tmp_path):
    """A single absurd point makes the loss infinite when its batch comes up; the guard stops
    the run before anything is saved from that step, and names the last good checkpoint."""
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    x[137] = 3e38
    np.save(tmp_path / "bad.npy", x)
    cfg = make_config("train", "model=realnvp", *SMALL_FLOW, "data=tensor_file", f"data.path={tmp_path / 'bad.npy'}",
                      "data.batch_size=10", "trainer.max_steps=50", *FAST, "callbacks.checkpoint.every_n_train_steps=1")
    with pytest.raises(UserError, match=r"train/nll became (inf|nan) at step \d+; the last good checkpoint is") as e:
        train(cfg)
    step = int(str(e.value).split(" at step ")[1].split(";")[0])
    last = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/last.ckpt")
    assert last["global_step"] == step - 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
