"""What the commands share: the run directory and its group choices, the device, metrics.json and
the closing summary. (Building objects from configs: gen_runner/instantiate.py; reading
checkpoints: gen_runner/checkpoints.py.)"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gen_runner.errors import UserError
from gen_runner.instantiate import build

__all__ = ["run_dir", "choices", "device_for", "write_metrics", "log_metrics", "show", "finish", "container"]


def run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def choices() -> dict[str, str]:
    """The config-group options this run was composed from (model, data, optimizer, ...)."""
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def device_for(trainer_cfg: DictConfig | None) -> torch.device:
    accelerator = (trainer_cfg or {}).get("accelerator", "cpu")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator} but no CUDA device is visible; use trainer=default")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _finite(value: Any, name: str, found: dict[str, str]) -> Any:
    """`value` with every inf/NaN float replaced by None, each recorded in `found` under its key path."""
    if isinstance(value, float) and not math.isfinite(value):
        found[name] = str(value)  # "inf", "-inf", "nan"
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{name}.{k}" if name else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, f"{name}[{i}]", found) for i, v in enumerate(value)]
    return value


def write_metrics(directory: Path, metrics: dict[str, float], protocol: dict[str, Any]) -> Path:
    """metrics.json: a flat object of final values plus a `protocol` object saying how they were measured.

    Strict JSON (no Infinity or NaN, which json.loads in other languages rejects): a non-finite value
    is written as null, and `protocol.non_finite` names each one with what it was."""
    found: dict[str, str] = {}
    metrics = _finite(dict(metrics), "", found)
    protocol = _finite(dict(protocol), "protocol", found)
    if found:
        protocol["non_finite"] = {k: f"{v} (written as null)" for k, v in found.items()}
    path = directory / "metrics.json"
    path.write_text(json.dumps({**metrics, "protocol": protocol}, indent=2, allow_nan=False) + "\n")
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
