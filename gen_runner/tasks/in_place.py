"""Continue a run in its own directory: `gen-runner train resume=<run dir>`, or the same command run
again in a directory that already holds checkpoints (a requeued SLURM job of a sweep:
hydra-submitit-launcher re-runs the same Hydra job, whose directory <sweep>/<num>_<name> is the same).

The CLI (`resume_args`) replays the run's own overrides (<run>/.hydra/overrides.yaml) with Hydra's run
directory set to the run, so the config is composed as it was (its .hydra/ record is left as it is:
a later resume replays the original overrides, plus those it is given). The task (`checkpoint_in`,
`check_same_run`) then takes last.ckpt there (train.py falls back to the newest good step file if it
is unreadable), compares the composed config with the one that checkpoint was trained with, and
refuses in one line any override that would change the run; only `trainer.max_steps` (train further)
may differ. TensorBoard writes into the same directory with `purge_step` at the checkpoint's step, so
the events a killed attempt wrote after its last save are dropped and every step appears once.
A run already trained to its `trainer.max_steps` is not trained again: its metrics.json is returned.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gen_runner.errors import UserError

__all__ = ["resume_args", "checkpoint_in", "check_same_run", "finished", "logger_kwargs"]

# Config keys a resume may change: where files go, what to resume from, how far to train, and what a
# search reads at the end (not the training).
MAY_CHANGE = ("ckpt_path", "resume", "trainer.max_steps", "paths", "optimized_metric", "eval")
_NOT_REPLAYED = ("resume", "ckpt_path")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def resume_args(args: list[str]) -> list[str]:
    """`train resume=<run> [trainer.max_steps=N]` -> the run's own overrides, the ones given here on
    top, and Hydra's run directory set to the run. Other arguments are returned unchanged."""
    given = [a for a in args if "=" in a and not a.startswith("-") and _key(a) == "resume"]
    if not given:
        return args
    value = given[-1].split("=", 1)[1].strip("'\"")
    if any(a in ("-m", "--multirun") for a in args):
        raise UserError("resume= continues one run; drop --multirun (a requeued sweep job resumes its own run)")
    run = Path(value).resolve()
    record = run / ".hydra" / "overrides.yaml"
    if not record.is_file():
        raise UserError(f"resume={value}: not a gen-runner train run directory (no .hydra/overrides.yaml); "
                        "pass the directory a run printed as 'Run directory:'")
    import yaml

    saved = [o for o in yaml.safe_load(record.read_text()) or [] if _key(o) not in _NOT_REPLAYED]
    extra = [a for a in args if a not in given]
    replaced = {_key(a) for a in extra if "=" in a and not a.startswith("-")}
    # hydra.output_subdir=null: the run's .hydra/ record stays the one it was started with (a refused
    # override must not land in the overrides.yaml the next resume replays).
    return [*(o for o in saved if _key(o) not in replaced), *extra,
            f"hydra.run.dir={_quote(str(run))}", "hydra.output_subdir=null", f"resume={_quote(str(run))}"]


def checkpoint_in(cfg, run_dir: Path) -> Path | None:
    """The checkpoint this run continues from in place (its directory's last.ckpt, else its newest step
    file), or None for a fresh run. `resume=` must name this directory and find a checkpoint there."""
    from gen_runner.callbacks.checkpoint import step_checkpoints

    directory = run_dir / "checkpoints"
    last = directory / "last.ckpt"
    found = last if last.exists() else next(iter(step_checkpoints(directory)), None)
    if cfg.get("resume"):
        if Path(cfg.resume).resolve() != run_dir.resolve():
            raise UserError(f"resume={cfg.resume} is not this run's directory ({run_dir}); pass resume= alone, "
                            "without hydra.run.dir")
        if found is None:
            raise UserError(f"resume={cfg.resume}: no checkpoint there (the run stopped before its first save); "
                            "run its command again to train it from the start")
    if found is not None and cfg.ckpt_path:
        raise UserError(f"{run_dir} already holds this run's checkpoints and ckpt_path={cfg.ckpt_path} names "
                        "another: drop ckpt_path to continue the run in place, or train into a new directory")
    return found


def _differences(was: Any, now: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(was, dict) and isinstance(now, dict):
        missing = object()
        found = []
        for k in [*was, *(k for k in now if k not in was)]:
            a, b = was.get(k, missing), now.get(k, missing)
            if {a is missing, b is missing} == {True, False} and (a if b is missing else b) is None:
                continue  # a key added since, at its empty default
            found += _differences(None if a is missing else a, None if b is missing else b,
                                  f"{key}.{k}" if key else str(k))
        return found
    return [] if was == now else [(key, was, now)]


def check_same_run(cfg, trained: dict, run_dir: Path) -> None:
    """The composed config (`cfg`) must be the one the checkpoint was trained with (`trained`), up to
    MAY_CHANGE; else one line naming the first key that differs."""
    from omegaconf import OmegaConf

    now = OmegaConf.to_container(cfg, resolve=True)
    for key, was, new in _differences(trained, now):
        if not any(key == k or key.startswith(k + ".") for k in MAY_CHANGE):
            raise UserError(f"resuming {run_dir}: {key}={new!r} would change the run (it was trained with "
                            f"{was!r}); drop that override (a resume may change only trainer.max_steps)")


def finished(run_dir: Path, step: int, max_steps: int) -> dict | None:
    """The metrics of a run already trained to `max_steps` (its metrics.json), else None."""
    path = run_dir / "metrics.json"
    if step < max_steps or not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    metrics.pop("protocol", None)
    return metrics


def logger_kwargs(node, run_dir: Path, step: int) -> dict:
    """TensorBoard continuing in a directory with events: those at `step` and after are purged."""
    target = str(node.get("_target_", ""))
    events = run_dir / "tensorboard"
    if target.endswith("TensorBoardLogger") and events.is_dir() and any(events.iterdir()):
        return {"purge_step": step}
    return {}
