"""Objects from config nodes: `hydra.utils.instantiate`, with a user's bad argument reported in one
line, and the check that a config from a file someone else wrote calls only what the project ships.

A checkpoint carries its run config, and `eval`/`sample` rebuild the model and data from it. Hydra
calls whatever `_target_` names, so a crafted checkpoint could name `pathlib.Path.write_text` or
`torch.load` (which unpickles, and so runs, anything). `check_trusted` refuses such a config before
anything is called: every `_target_`, at any depth (`_partial_` ones and those inside `_args_`
included), must be a class or function defined in gen_runner itself (its `__module__` and
`__qualname__` spell the path exactly, so `gen_runner.checkpoints.torch.load` is refused) or one of
the few optimizers the configs name; and no string may hold an interpolation (a checkpoint's config
is saved resolved, and a resolver could build a `_target_` after the check).
"""
from __future__ import annotations

import importlib
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from gen_runner.errors import UserError

__all__ = ["build", "build_datamodule", "build_model", "check_trusted"]

# What a checkpoint's config may call beyond gen_runner's own classes and functions.
TRUSTED_ELSEWHERE = frozenset({"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.Adamax", "torch.optim.RMSprop",
                               "torch.optim.SGD"})


def _defined_in_gen_runner(target: str) -> bool:
    """Whether `target` is the exact path of a class or function that gen_runner defines."""
    parts = target.split(".")
    if parts[0] != "gen_runner" or any(not p.isidentifier() or p.startswith("_") for p in parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name, None)
        return (callable(obj) and getattr(obj, "__module__", None) == module_name
                and getattr(obj, "__qualname__", None) == ".".join(parts[cut:]))
    return False


def check_trusted(node: Any, where: str) -> None:
    """Raise a one-line UserError naming the first `_target_` (or interpolation) in `node` that is not
    the project's own; `where` says whose config it is (e.g. "checkpoint x.ckpt")."""
    if isinstance(node, str) and "${" in node:
        raise UserError(f"{where} is refused: its config holds an interpolation ({node[:60]!r}), which a "
                        "gen-runner checkpoint never does; only load checkpoints from sources you trust")
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and
                                       (target in TRUSTED_ELSEWHERE or _defined_in_gen_runner(target))):
            raise UserError(f"{where} is refused: its config calls {str(target)[:80]!r}, which is not part of "
                            "gen-runner (a crafted checkpoint can run code this way); only load checkpoints from "
                            "sources you trust")
    if isinstance(node, dict | list | tuple):
        for value in node.values() if isinstance(node, dict) else node:
            check_trusted(value, where)


def build(node: DictConfig | dict, what: str, **kwargs: Any) -> Any:
    """`node`'s `_target_` called with its arguments (and `kwargs`); `what` names the node in errors."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError, FileNotFoundError)):
            raise UserError(f"{what}: {cause}") from e
        raise


def build_datamodule(data_cfg: DictConfig | dict, seed: int, what: str = "data"):
    """The datamodule of `data_cfg`, its data prepared and split."""
    dm = build(data_cfg, what, seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_model(model_cfg: DictConfig | dict, data_info: dict, optimizer_cfg=None, what: str = "model"):
    """The LightningModule of `model_cfg` for data described by `data_info` (a datamodule's `describe()`)."""
    optimizer = build(optimizer_cfg, "optimizer") if optimizer_cfg is not None else None
    return build(model_cfg, what, data=data_info, optimizer=optimizer)
