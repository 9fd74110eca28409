"""`gen-runner eval`: the metrics a checkpoint's model declares, on its own test split or other data.

Each model declares its eval metrics (gen_runner/capabilities.py): every generator the image
metrics (FID, KID, IS, precision/recall, density/coverage with `eval.features=`), GANs the 2-D mode
coverage, flows the likelihood, and variants their own (class_accuracy, code_accuracy,
reconstruction_mse and probe_accuracy, accuracy). This task builds the model, its data and an
`EvalContext`, runs every declared metric that applies, and writes metrics.json with the
`protocol` each metric reports.
"""
from __future__ import annotations

from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from gen_runner.capabilities import eval_metrics
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.errors import UserError
from gen_runner.instantiate import build_datamodule
from gen_runner.metrics.context import SPLITS, EvalContext
from gen_runner.metrics.features import make_extractor
from gen_runner.tasks import common

__all__ = ["evaluate"]


def evaluate(cfg: DictConfig) -> dict:
    if cfg.eval.split not in (*SPLITS, "all"):
        raise UserError(f"eval.split={cfg.eval.split!r}: choose train, val, test or all")
    ckpt = load_checkpoint(cfg.ckpt_path)
    info = ckpt["gen_runner"]
    seed_everything(cfg.seed, verbose=False)
    device = common.device_for(cfg.trainer)
    model = model_from_checkpoint(ckpt, cfg.eval.weights, "eval.weights").to(device)
    if cfg.data is not None:
        data_cfg, data_name = cfg.data, common.choices().get("data")
    else:
        data_cfg, data_name = info["config"]["data"], info["choices"].get("data")
    dm = build_datamodule(data_cfg, info["config"]["seed"], what=f"data={data_name}")
    ctx = EvalContext(model, dm, cfg.eval, seed=cfg.seed, temperature=cfg.temperature, device=device,
                      data_key=common.container(data_cfg) if isinstance(data_cfg, DictConfig) else data_cfg,
                      make_extractor=lambda: make_extractor(cfg.eval.features, cfg.eval.features_ckpt, device))

    metrics, protocol = {}, {}
    declared = eval_metrics(model)
    with model.truncated(cfg.truncation):
        for metric in declared:
            found = metric.compute(ctx)
            if found is not None:
                metrics.update(found[0])
                protocol.update(found[1])
    if not metrics:
        offered = "; ".join(f"{m.produces} (needs {m.needs})" for m in declared if m.needs)
        raise UserError(f"no metric applies to model={info['choices'].get('model')} on data={data_name}; "
                        f"it offers: {offered}")
    protocol = {"command": "eval", "checkpoint": str(cfg.ckpt_path), "step": ckpt.get("global_step"),
                "model": info["choices"].get("model"), "weights": model.weights, "data": data_name, "seed": cfg.seed,
                **({"truncation": cfg.truncation} if cfg.truncation is not None else {}), **protocol}

    out = common.run_dir()
    common.write_metrics(out, metrics, protocol)
    common.log_metrics(cfg.logger, metrics, step=ckpt.get("global_step") or 0)
    summary = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in metrics.items()}
    common.finish({**summary, "Metrics": out / "metrics.json"}, out)
    return metrics
