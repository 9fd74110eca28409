"""Composing gen-runner's configs outside a Hydra run: the CLI's checks before Hydra starts, the
Optuna study's settings, in-process tests and the benchmark scripts all compose the same way.
Hydra's global state is cleared before and after, so composes do not leak into each other. Composing
`train`, `eval` or `sample` needs the schema and resolvers registered first
(`gen_runner.schema.register()`, `gen_runner.cli.register_resolvers()`; the CLI does both)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_DIR", "compose", "job_config"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def compose(command: str, overrides: list[str], hydra: bool = False, config_dir: Path = CONFIG_DIR):
    """The config `command` (configs/<command>.yaml) composes with `overrides`; `hydra`: with its
    `hydra` node."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir), version_base="1.3"):
            return hydra_compose(command, overrides=overrides, return_hydra_config=hydra)
    finally:
        GlobalHydra.instance().clear()


def job_config(command: str, overrides: list[str], out: Path):
    """A job's resolved config as a run would see it, with Hydra's runtime set to write into `out`
    (for calling a task function in-process: tests, benchmarks)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    cfg = compose(command, overrides, hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)  # ${hydra:...} would otherwise follow the most recently composed run
    return cfg
