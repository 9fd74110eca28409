"""A checkpoint is untrusted input: rebuilding from one never calls a target the project did not
ship (issue 12, item 1). Crafted checkpoints are refused in one line, before anything runs."""
from __future__ import annotations

import pytest
import torch

from gen_runner.cli import config_groups
from gen_runner.errors import UserError
from gen_runner.instantiate import check_trusted
from gen_runner.tasks.common import container
from gen_runner.tasks.train import train
from helpers import FAST, compose_config, run_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    cfg = compose_config("train", ["model=gan", "data=moons", "data.batch_size=32", "trainer.max_steps=1",
                                   "model.generator.mlp.hidden=[8]", "model.discriminator.mlp.hidden=[8]", *FAST], out)
    train(cfg)
    return torch.load(out / "checkpoints/last.ckpt", weights_only=True)


def crafted(checkpoint, tmp_path, part: str, node) -> str:
    """A copy of the checkpoint whose config.<part> is `node`."""
    ckpt = {**checkpoint, "gen_runner": {**checkpoint["gen_runner"]}}
    ckpt["gen_runner"]["config"] = {**ckpt["gen_runner"]["config"], part: node}
    path = tmp_path / "crafted.ckpt"
    torch.save(ckpt, path)
    return str(path)


def write_file(path) -> dict:
    return {"_target_": "pathlib.Path.write_text", "_args_": [{"_target_": "pathlib.Path", "_args_": [str(path)]}, "x"]}


def nested(checkpoint, target: dict) -> dict:
    """The checkpoint's own model config with `target` hidden as a partial deep inside it."""
    model = {**checkpoint["gen_runner"]["config"]["model"]}
    model["generator"] = {**model["generator"], "mlp": {"hidden": [8], "activation": {**target, "_partial_": True}}}
    return model


def attacks(checkpoint, tmp_path):
    payload = tmp_path / "payload.pt"
    torch.save({"harmless": 1}, payload)
    return {
        "pathlib.Path.write_text": ("model", write_file(tmp_path / "pwned.txt")),
        "torch.load": ("model", {"_target_": "torch.load", "f": str(payload), "weights_only": False}),
        "gen_runner.checkpoints.torch.load": ("model", {"_target_": "gen_runner.checkpoints.torch.load",
                                                        "f": str(payload), "weights_only": False}),
        "gen_runner.tasks.common.Path": ("model", nested(checkpoint, {"_target_": "gen_runner.tasks.common.Path",
                                                                      "_args_": [str(tmp_path / "p")]})),
        "os.system": ("data", {**checkpoint["gen_runner"]["config"]["data"],
                               "distribution": {"_target_": "os.system", "_args_": ["touch pwned"]}}),
        "interpolation": ("model", {**checkpoint["gen_runner"]["config"]["model"], "latent_dim": "${oc.env:HOME}"}),
    }


@pytest.mark.parametrize("name", ["pathlib.Path.write_text", "torch.load", "gen_runner.checkpoints.torch.load",
                                  "gen_runner.tasks.common.Path", "os.system", "interpolation"])
@pytest.mark.parametrize("command", ["sample", "eval"])
def test_crafted_checkpoints_are_refused_before_anything_runs(checkpoint, tmp_path, name, command):
    part, node = attacks(checkpoint, tmp_path)[name]
    path = crafted(checkpoint, tmp_path, part, node)
    before = set(tmp_path.rglob("*"))
    proc = run_cli(command, f"ckpt_path={path}", cwd=tmp_path, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("gen-runner: error: checkpoint ")
    assert "is refused" in lines[0] and (name.split(".")[-1] in lines[0] or name == "interpolation")
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "p").exists()
    assert set(tmp_path.rglob("*")) - before <= {p for p in tmp_path.rglob("*") if "outputs" in p.parts}


def test_the_project_s_own_targets_pass_and_lookalikes_do_not():
    check_trusted({"_target_": "gen_runner.gans.module.GANModule",
                   "objective": {"_target_": "gen_runner.gans.objectives.StandardGAN"},
                   "generator": {"_target_": "gen_runner.nets.gan.generator", "_partial_": True}}, "x")
    for bad in ["gen_runner.gans.module.torch.load", "gen_runner.__main__.main", "gen_runner.nope.Thing",
                "gen_runner.gans.module.GANModule.__init__.__globals__", "builtins.eval", 3]:
        with pytest.raises(UserError, match="is refused"):
            check_trusted({"a": [{"_target_": bad}]}, "x")


def test_every_shipped_model_and_data_config_is_trusted(tmp_path):
    """What `gen-runner train` saves into a checkpoint passes the check, for every model and data option."""
    for option in config_groups()["model"]:
        check_trusted(container(compose_config("train", [f"model={option}"], tmp_path))["model"], f"model={option}")
    for option in config_groups()["data"]:
        path = ["data.path=x"] if option in ("tensor_file", "image_folder", "paired_folder", "unpaired_folder") else []
        check_trusted(container(compose_config("train", [f"data={option}", *path], tmp_path))["data"], option)
