"""Optuna searches (`hparams_search=<preset>`, Hydra's Optuna sweeper from hydra-optuna-sweeper,
`pip install 'gen-runner[optuna]'`) that resume: `hydra.sweeper.n_trials` is the study's total.

The plugin asks for `n_trials` new trials each time it runs, so a search killed after 2 of 3 trials
and started again would run 3 more. Before Hydra starts, `resumed_search_args` opens the study in
the preset's storage, counts its completed trials and passes the plugin `n_trials` minus those:
the same command run again runs only the missing trials (TPE conditioned on all of them), then the
plugin prints the best parameters and value as at the end of every search (also in
<sweep dir>/optimization_results.yaml). Trials a killed search left RUNNING (optuna 2.10 keeps no
heartbeat) are marked FAIL and redone. A seeded sampler gets seed + the completed trials, so it does
not propose the first trials' parameters again. A sqlite storage's folder is created. The objective is what
`gen-runner train` returns for `optimized_metric` (tasks/objective.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

from gen_runner.configs import compose

__all__ = ["resumed_search_args"]

log = logging.getLogger("gen_runner")


def _study_settings(args: list[str], config_dir: Path) -> tuple[str | None, str | None, int, int | None]:
    """(storage, study_name, n_trials, sampler seed) of the sweeper the arguments compose (sweep values
    left out)."""
    keep = [a for a in args if a.split("=", 1)[0].lstrip("+~") in ("hparams_search", "paths.root")
            or a.startswith("hydra.sweeper.")]
    sweeper = compose("train", keep, hydra=True, config_dir=config_dir).hydra.sweeper
    seed = sweeper.get("sampler", {}).get("seed")
    return sweeper.get("storage"), sweeper.get("study_name"), int(sweeper.n_trials), seed


def resumed_search_args(args: list[str], config_dir: Path) -> list[str]:
    """`args` with `hydra.sweeper.n_trials` lowered by the trials the study has completed already."""
    if not any(a.startswith("hparams_search=") for a in args):
        return args
    storage, name, total, seed = _study_settings(args, config_dir)
    if not storage or not name:
        return args
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # a new study
        return args
    done = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            study._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
        done += trial.state == optuna.trial.TrialState.COMPLETE
    left = max(total - done, 0)
    print(f"gen-runner: study {name} has {done} of {total} trials done; running {left} more", flush=True)
    # A seeded sampler restarted with its seed would propose the first trials' parameters again.
    reseed = [f"hydra.sweeper.sampler.seed={seed + done}"] if seed is not None else []
    return [a for a in args if not a.startswith(("hydra.sweeper.n_trials=", "hydra.sweeper.sampler.seed="))] + [
        f"hydra.sweeper.n_trials={left}", *reseed]
