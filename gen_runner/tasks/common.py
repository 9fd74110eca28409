"""What the three commands share: building data and models from configs, reading checkpoints,
picking the device, and writing metrics.json."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gen_runner.errors import UserError

if TYPE_CHECKING:  # importing them pulls in Lightning, which `gen-runner report` does not need
    from gen_runner.base import RunnerModule
    from gen_runner.data.datamodule import GenDataModule

__all__ = [
    "run_dir", "choices", "build", "build_datamodule", "build_model", "load_checkpoint",
    "model_from_checkpoint", "device_for", "write_metrics", "log_metrics", "show", "finish", "container",
]


def run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def choices() -> dict[str, str]:
    """The config-group options this run was composed from (model, data, optimizer, ...)."""
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def build(node: DictConfig | dict, what: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, with a user's bad argument reported in one line."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError, FileNotFoundError)):
            raise UserError(f"{what}: {cause}") from e
        raise


def build_datamodule(data_cfg: DictConfig | dict, seed: int, what: str = "data") -> GenDataModule:
    dm = build(data_cfg, what, seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_model(model_cfg: DictConfig | dict, data_info: dict, optimizer_cfg=None,
                what: str = "model") -> RunnerModule:
    optimizer = build(optimizer_cfg, "optimizer") if optimizer_cfg is not None else None
    return build(model_cfg, what, data=data_info, optimizer=optimizer)


def load_checkpoint(path: str | os.PathLike | None) -> dict:
    """A gen-runner checkpoint, read with weights_only=True; one clear line for anything else."""
    if path in (None, "", "???"):
        raise UserError("this command needs a checkpoint: pass ckpt_path=<run directory>/checkpoints/last.ckpt")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}; pass ckpt_path=<run directory>/checkpoints/last.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, pickled objects we refuse to run
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}): it is corrupt or not a "
                        "PyTorch checkpoint; pick another, e.g. the run's checkpoints/last.ckpt") from e
    if not isinstance(ckpt, dict) or "config" not in ckpt.get("gen_runner", {}) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a gen-runner checkpoint (no run config inside); "
                        "pass one written by `gen-runner train`")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> RunnerModule:
    info = ckpt["gen_runner"]
    model = build_model(info["config"]["model"], info["data"], what="model (from the checkpoint)")
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def device_for(trainer_cfg: DictConfig | None) -> torch.device:
    accelerator = (trainer_cfg or {}).get("accelerator", "cpu")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator} but no CUDA device is visible; use trainer=default")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def write_metrics(directory: Path, metrics: dict[str, float], protocol: dict[str, Any]) -> Path:
    """metrics.json: a flat object of final values plus a `protocol` object saying how they were measured."""
    path = directory / "metrics.json"
    path.write_text(json.dumps({**metrics, "protocol": protocol}, indent=2) + "\n")
    return path


def log_metrics(logger_cfg: DictConfig | None, metrics: dict[str, float], step: int) -> None:
    """Send eval metrics to the configured loggers (TensorBoard: scalars `eval/<name>`)."""
    for node in (logger_cfg or {}).values():
        if node is None:
            continue
        logger = build(node, "logger")
        logger.log_metrics({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        logger.finalize("success")


def show(path: str | Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def finish(lines: dict[str, str | Path], directory: Path) -> None:
    """The closing summary; always ends with `Run directory: <path>` on a line of its own."""
    width = max((len(k) for k in lines), default=0) + 1
    for key, value in lines.items():
        print(f"{key + ':':<{width}} {show(value) if isinstance(value, Path) else value}")
    print(f"Run directory: {show(directory)}", flush=True)


def container(cfg: DictConfig) -> dict:
    """The resolved config as plain Python containers (safe for weights_only checkpoints)."""
    return OmegaConf.to_container(cfg, resolve=True)
