"""The value a hyperparameter search optimizes: `optimized_metric=<name>` (set by the
hparams_search=<preset> configs, read by Hydra's Optuna sweeper from what `gen-runner train` returns).

The name is either a metric logged during training (`val/nll`, `val/bpd`: its last logged value, so
the presets validate at the final step) or one of the model's eval metrics (`reverse_kl`, `modes`,
`nll`, `fid` with eval features, ...: gen-runner eval's computation with the config's `eval.*`
options, on the validation split, never the test split). Both are measured on the final weights, those of the run's last checkpoint, not
the best value seen during training.
"""
from __future__ import annotations

import re

from gen_runner.capabilities import eval_metrics
from gen_runner.errors import UserError

__all__ = ["objective_metrics"]


def objective_metrics(name: str, model, datamodule, options, seed: int, device) -> tuple[dict, dict]:
    """(metrics, protocol) of the eval metrics of `model` that produce `name`, with the eval `options`
    (the train config's `eval.*`, whose split defaults to val there)."""
    from gen_runner.metrics.context import EvalContext

    if options.split not in ("val", "train"):
        raise UserError(f"optimized_metric={name} with eval.split={options.split}: pass eval.split=val (a search "
                        "must not tune on the test split)")
    ctx = EvalContext(model.eval().to(device), datamodule, options, seed=seed, temperature=1.0, device=device,
                      data_key=None, make_extractor=lambda: None)
    declared = eval_metrics(model)
    wanted = [m for m in declared if re.search(rf"\b{re.escape(name)}\b", m.produces)]
    metrics, protocol = {}, {}
    for metric in wanted:
        found = metric.compute(ctx)
        if found is not None:
            metrics.update(found[0])
            protocol.update(found[1])
    if name not in metrics:
        offered = ", ".join(m.produces for m in declared) or "none"
        raise UserError(f"optimized_metric={name}: not a metric this run logs or its model evaluates here "
                        f"(eval metrics: {offered}); pass one of them, e.g. val/nll for flows")
    return metrics, {"objective": f"{name} on the {options.split} split at the final step (the last checkpoint)",
                     **protocol}
