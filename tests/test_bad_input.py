"""Bad input, fed through the real command line (in-process): every case ends in exactly one line on
stderr saying what to do, a non-zero exit status, and no new run directory (issue 12, item 5).

The table covers the findings of the issue, and generated rows: a wrong type and an out-of-range
value for every numeric option of the schema (gen_runner/schema.py) and of every data config."""
from __future__ import annotations

import inspect
import os
from dataclasses import fields

import pytest
from omegaconf import OmegaConf

from gen_runner.cli import CONFIG_DIR, config_groups
from gen_runner.data.datamodule import GenDataModule
from gen_runner.schema import RANGES, EvalOptions, SampleConfig, TrainConfig
from helpers import compose_config, run_cli

TINY = ["model=gan", "data=ring8", "data.num_train=500", "model.generator.mlp.hidden=[8]",
        "model.discriminator.mlp.hidden=[8]", "model.discriminator.mlp.dropout=0", "callbacks=minimal"]


@pytest.fixture(scope="module")
def ring8_checkpoint(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("ring8")
    run_cli("train", *TINY, "trainer.max_steps=1", cwd=cwd)
    return str(next(cwd.glob("outputs/train/*/*/checkpoints/last.ckpt")))


def run_dirs(cwd) -> set:
    """Every run directory below cwd/outputs (a folder holding .hydra)."""
    return {p.parent for p in cwd.glob("outputs/**/.hydra")}


def expect_one_line(cwd, *args) -> str:
    before = run_dirs(cwd)
    proc = run_cli(*args, cwd=cwd, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, f"{args} succeeded:\n{proc.stdout}"
    assert len(lines) == 1 and lines[0].startswith("gen-runner: error: "), f"{args}:\n{proc.stderr}"
    assert run_dirs(cwd) == before, f"{args} left a run directory behind"
    return lines[0]


# -- the findings, and more of their kind --------------------------------------------------------
FINDINGS = [
    (["train", "data.batch_size=0"], "data.batch_size=0: pass a whole number >= 1"),
    (["train", "data.batch_size=-3"], "data.batch_size=-3"),
    (["train", "paths.root=/proc/x"], "paths.root=/proc/x: runs cannot be written there"),
    (["train", "trainer.max_steps=-5"], "trainer.max_steps=-5: pass a positive number of steps"),
    (["train", "trainer.max_steps=-1"], "trainer.max_steps=-1 trains without end"),
    (["train", "model=pacgan3"], "model.pack=3 needs data.batch_size divisible by 3"),
    (["train", "data.val_fraction=0.6", "data.test_fraction=0.5"], "leave no training data"),
    (["train", "nosuchkey=1"], "Could not override 'nosuchkey'"),
    (["train", "model=gan", "data=ring8", "model.latent_dim=abc"], "model=gan"),
    (["sample", "ckpt_path=x.ckpt", "temperature=-1"], "temperature=-1.0: pass a value > 0"),
    (["sample", "ckpt_path=x.ckpt", "mode.steps=3"], "Could not override 'mode.steps'"),
    (["eval", "ckpt_path=x.ckpt", "eval.split=bogus"], "eval.split='bogus': choose train, val, test or all"),
]


@pytest.mark.parametrize("args, message", FINDINGS, ids=[" ".join(a) for a, _ in FINDINGS])
def test_findings(tmp_path, args, message):
    assert message in expect_one_line(tmp_path, *args)


def test_read_only_root(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert "runs cannot be written there" in expect_one_line(tmp_path, "train", f"paths.root={root}")
    finally:
        root.chmod(0o700)


def test_checkpoint_mistakes(tmp_path, ring8_checkpoint):
    run = ring8_checkpoint.rsplit("/checkpoints/", 1)[0]
    line = expect_one_line(tmp_path, "eval", f"ckpt_path={run}")
    assert "is a directory" in line and f"ckpt_path={run}/checkpoints/last.ckpt" in line
    line = expect_one_line(tmp_path, "train", "model=gan", "data=digits", f"ckpt_path={ring8_checkpoint}",
                           "trainer.max_steps=2")
    assert "was trained on data=ring8 (2-D points)" in line and "pass data=ring8 to resume it" in line
    line = expect_one_line(tmp_path, "sample", f"ckpt_path={ring8_checkpoint}", "mode=traverse")
    assert "samples in the modes samples, interpolate, arithmetic" in line
    line = expect_one_line(tmp_path, "sample", f"ckpt_path={ring8_checkpoint}", "labels=[1]")
    assert "unconditional" in line
    line = expect_one_line(tmp_path, "sample", f"ckpt_path={ring8_checkpoint}", "mode=interpolate", "mode.steps=1")
    assert "mode.steps=1" in line
    line = expect_one_line(tmp_path, "eval", f"ckpt_path={ring8_checkpoint}", "data=digits")
    assert "no metric applies to model=gan on data=digits" in line
    line = expect_one_line(tmp_path, "eval", f"ckpt_path={ring8_checkpoint}", "eval.metrics=[bogus]",
                           "eval.features=classifier", f"eval.features_ckpt={ring8_checkpoint}")
    assert "holds a gan" in line or "applies to images" in line


# -- every numeric option: a wrong type and an out-of-range value -----------------------------------------
def schema_cases():
    """(command, key, value) for each numeric option of the schema: 'abc', and below its range."""
    numeric = (int, float, "int", "float", "Optional[int]", "typing.Optional[int]")
    cases = []
    for command, schema, prefix in [("train", TrainConfig, ""), ("sample", SampleConfig, ""),
                                    ("eval", EvalOptions, "eval.")]:
        for f in fields(schema):
            if f.type in numeric or str(f.type) in numeric:
                cases.append((command, prefix + f.name, "abc"))
    for key, low, exclusive in RANGES:
        command = "eval" if key.startswith("eval.") else ("sample" if key in ("batch_size", "per_class") else "train")
        cases.append((command, key, low if exclusive else low - 1))
    return cases


@pytest.mark.parametrize("command, key, value", schema_cases(), ids=lambda v: str(v))
def test_schema_options(tmp_path, command, key, value):
    extra = ["ckpt_path=x.ckpt"] if command != "train" else []
    line = expect_one_line(tmp_path, command, *extra, f"{key}={value}")
    assert key in line


NEGATIVE_ALLOWED = {"distribution.rate"}  # pinwheel's twist may turn either way


def data_cases():
    """(data option, key, value) for each numeric leaf of the data configs, once per class that
    checks it (the datamodule's own options, the distribution's, or GenDataModule's shared ones)."""
    shared = set(inspect.signature(GenDataModule.__init__).parameters)
    seen, cases = set(), []
    for option in config_groups()["data"]:
        cfg = OmegaConf.load(CONFIG_DIR / "data" / f"{option}.yaml")
        leaves = OmegaConf.to_container(cfg, resolve=False)
        flat = {k: v for k, v in leaves.items() if k != "distribution"}
        flat |= {f"distribution.{k}": v for k, v in (leaves.get("distribution") or {}).items()}
        for key, value in flat.items():
            owner = ("GenDataModule" if key in shared else
                     leaves["distribution"]["_target_"] if key.startswith("distribution.") else leaves["_target_"])
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (owner, key) in seen:
                continue
            seen.add((owner, key))
            cases.append((option, key, "abc"))
            if key not in NEGATIVE_ALLOWED:
                cases.append((option, key, -1))
    return cases


@pytest.mark.parametrize("option, key, value", data_cases(), ids=lambda v: str(v))
def test_data_options(tmp_path, option, key, value):
    extra = {"tensor_file": ["data.path=x.npy"], "image_folder": ["data.path=x"], "paired_folder": ["data.path=x"],
             "unpaired_folder": ["data.path=x"]}.get(option, [])
    line = expect_one_line(tmp_path, "train", f"data={option}", f"data.{key}={value}", *extra)
    assert f"data.{key}" in line


def test_the_generated_tables_cover_the_options():
    assert len(schema_cases()) >= 25 and len(data_cases()) >= 40
