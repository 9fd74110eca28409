"""Typed schema of the top-level run options, registered in Hydra's ConfigStore.

Each primary config (configs/train.yaml, eval.yaml, sample.yaml) lists its schema first in its
defaults, so a misspelt top-level key or a value of the wrong type fails at composition, naming
the key, before anything is built. Group nodes (model, data, trainer, ...) stay free-form: their
keys are the constructor arguments of the classes they name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = ["TrainConfig", "EvalConfig", "SampleConfig", "register"]


@dataclass
class _RunConfig:
    task_name: str = MISSING
    name: str = MISSING
    seed: int = 0
    ckpt_path: Optional[str] = None
    paths: Any = MISSING
    trainer: Any = None
    logger: Any = None


@dataclass
class TrainConfig(_RunConfig):
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    callbacks: Any = field(default_factory=dict)
    num_samples: int = 64
    temperature: float = 1.0


@dataclass
class EvalConfig(_RunConfig):
    data: Any = None
    split: str = "test"
    num_samples: int = 2500
    batch_size: int = 500
    temperature: float = 1.0


@dataclass
class SampleConfig(_RunConfig):
    num_samples: int = 64
    batch_size: int = 500
    temperature: float = 1.0


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="sample_schema", node=SampleConfig)
