"""Typed schema of the top-level run options, registered in Hydra's ConfigStore.

Each primary config (configs/train.yaml, eval.yaml, sample.yaml, report.yaml) lists its schema
first in its defaults, so a misspelt key or a value of the wrong type fails at composition,
naming the key, before anything is built. Group nodes (model, data, trainer, ...) stay
free-form: their keys are the constructor arguments of the classes they name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

__all__ = ["TrainConfig", "EvalConfig", "EvalOptions", "SampleConfig", "ReportConfig", "ReportOptions", "register",
           "check_ranges"]


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
class EvalOptions:
    """`eval.*`: what `gen-runner eval` measures and how (written into metrics.json's protocol)."""

    split: str = "test"  # real data split scored / compared against: train, val, test, all
    num_samples: int = 2500  # generated samples (2-D mode metrics: 2,500 as in PacGAN/VEEGAN)
    batch_size: int = 500
    features: Optional[str] = None  # image metrics' extractor: classifier | inception
    features_ckpt: Optional[str] = None  # a `model=classifier` checkpoint, for features=classifier
    features_ckpt_a: Optional[str] = None  # a classifier of the input domain A (CycleGAN's BtoA metrics)
    metrics: list[str] = field(default_factory=lambda: ["fid", "kid", "is", "prdc"])
    num_real: int = 10000  # real examples for the image metrics (at most the split's size)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    prdc_k: int = 3  # precision/recall k (Kynkaanniemi et al. 2019); density/coverage use 5
    cache_dir: Optional[str] = None  # real-feature cache; default ~/.cache/gen-runner/features
    iw_samples: int = 1  # flows on images: dequantization draws per image of the importance-weighted bound
    exact_logdet_max_dim: int = 16  # residual/continuous flows: exact log-det (trace) at eval up to this data dimension
    weights: str = "ema"  # GANs: ema (the generator's moving average, where the checkpoint has one) | raw


@dataclass
class TrainConfig(_RunConfig):
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    callbacks: Any = field(default_factory=dict)
    num_samples: int = 64
    temperature: float = 1.0
    resume: Optional[str] = None  # a run directory: continue that run in place (tasks/in_place.py)
    optimized_metric: Optional[str] = None  # what `train` returns to a hyperparameter search (tasks/objective.py)
    eval: EvalOptions = field(default_factory=lambda: EvalOptions(split="val"))  # optimized_metric's eval options


@dataclass
class EvalConfig(_RunConfig):
    data: Any = None
    temperature: float = 1.0
    truncation: Optional[float] = None  # what it means is the model's (`gen-runner --help`); None: none
    eval: EvalOptions = field(default_factory=EvalOptions)


@dataclass
class SampleConfig(_RunConfig):
    num_samples: int = 64
    batch_size: int = 500
    temperature: float = 1.0
    truncation: Optional[float] = None  # what it means is the model's (`gen-runner --help`); None: none
    input: Optional[str] = None  # image-to-image models: an image folder, a .npy file, or split=<train|val|test>
    labels: Optional[list[int]] = None  # conditional models: one sample per label (num_samples is ignored)
    per_class: Optional[int] = None  # conditional models: N samples of each class, a grid row per class
    weights: str = "ema"  # GANs: ema (the generator's moving average, where the checkpoint has one) | raw
    mode: Any = None  # the sample mode's options (configs/mode/<name>.yaml); its name is the group choice


@dataclass
class ReportOptions:
    """`report.*`: `gen-runner report <dirs>` turns run directories into a leaderboard."""

    dirs: list[str] = field(default_factory=list)  # run or multirun directories (positional on the CLI)
    mix_protocols: bool = False  # rank runs measured under different protocols together
    scalars: Optional[list[str]] = None  # TensorBoard scalars to plot (default: those all runs share)
    sort: Optional[str] = None  # metric to rank by (default: the first of fid, bpd, nll, reverse_kl, ...)


@dataclass
class ReportConfig:
    task_name: str = MISSING
    name: str = MISSING
    paths: Any = MISSING
    report: ReportOptions = field(default_factory=ReportOptions)


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(name="report_schema", node=ReportConfig)


# (key, lowest allowed value, whether the bound is exclusive): the numeric options the types above
# cannot bound. Data options are checked by the datamodules themselves.
RANGES = [
    ("seed", 0, False), ("num_samples", 1, False), ("batch_size", 1, False), ("temperature", 0, True),
    ("per_class", 1, False), ("truncation", 0, False), ("eval.num_samples", 1, False), ("eval.batch_size", 1, False),
    ("eval.num_real", 2, False), ("eval.kid_subsets", 1, False), ("eval.kid_subset_size", 2, False),
    ("eval.is_splits", 1, False), ("eval.prdc_k", 1, False), ("eval.iw_samples", 1, False),
    ("eval.exact_logdet_max_dim", 0, False),
]
MAX_SEED = 2**32 - 1


def check_ranges(cfg) -> str | None:
    """The first option of a composed config that lies out of its range, as one line saying what to
    pass, or None. Also trainer.max_steps: a positive step count, or -1 (no limit) with max_epochs."""
    for key, low, exclusive in RANGES:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or isinstance(value, bool):
            continue
        if value < low or (exclusive and value == low) or (key == "seed" and value > MAX_SEED):
            bound = f"> {low}" if exclusive else f">= {low}" + (f" and <= {MAX_SEED}" if key == "seed" else "")
            return f"{key}={value}: pass a value {bound}"
    steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or (steps < 1 and steps != -1):
            return f"trainer.max_steps={steps!r}: pass a positive number of steps (or -1 with trainer.max_epochs)"
        if steps == -1 and OmegaConf.select(cfg, "trainer.max_epochs", default=-1) in (-1, None):
            return "trainer.max_steps=-1 trains without end: pass a number of steps or trainer.max_epochs=N"
    return None
