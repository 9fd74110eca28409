"""`gen-runner train`: data, model, callbacks, loggers and Trainer from the config; fit; save; report."""
from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import seed_everything
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from gen_runner.callbacks.checkpoint import AtomicCheckpointIO, remove_orphans, step_checkpoints
from gen_runner.callbacks.preemption import Preemption
from gen_runner.callbacks.resume import ResumeState
from gen_runner.checkpoints import load_checkpoint
from gen_runner.errors import UserError
from gen_runner.instantiate import build, build_datamodule, build_model
from gen_runner.tasks import common, in_place
from gen_runner.tasks.objective import objective_metrics

__all__ = ["train"]

log = logging.getLogger("gen_runner")


def _record(ckpt: dict) -> dict:
    """A checkpoint's run record (config, choices, data) and the step it holds."""
    return {**ckpt["gen_runner"], "global_step": ckpt.get("global_step", 0)}


def _readable_resume(path: str) -> tuple[str, dict]:
    """(`path`, its run record), or, when it cannot be used (torn, unreadable, non-finite weights),
    the newest step checkpoint beside it that can, with one warning line; temporary files of killed
    saves there go."""
    directory = Path(path).parent
    if Path(path).is_file():
        remove_orphans(directory)
    try:
        return path, _record(load_checkpoint(path))
    except UserError as error:
        if not Path(path).is_file():
            raise
        for candidate in step_checkpoints(directory):
            if candidate.samefile(path):
                continue
            try:
                info = _record(load_checkpoint(candidate))
            except UserError:
                continue
            log.warning(f"{str(error).split(';')[0]}; resuming from {candidate} instead, the newest good "
                        "checkpoint beside it")
            return str(candidate), info
        raise


def _describe(data: dict) -> str:
    shape = data.get("shape", [])
    return f"{shape[0]}-D points" if len(shape) == 1 else "x".join(map(str, shape[1:])) + f" images, {shape[0]} channel(s)"


def _check_resume(cfg: DictConfig, info: dict, picked: dict[str, str], data: dict) -> None:
    """The checkpoint to resume from (`info`: its run record) must hold this run's model, trained on
    data of this shape."""
    was = info.get("choices", {}).get("model")
    if was and was != picked.get("model"):
        raise UserError(f"{cfg.ckpt_path} holds a model={was} run but this run is model={picked.get('model')}; "
                        f"pass model={was} to resume it")
    trained = info.get("data", {})
    if trained.get("shape") != data["shape"] or trained.get("num_classes") != data.get("num_classes"):
        was = info.get("choices", {}).get("data", "?")
        raise UserError(f"{cfg.ckpt_path} was trained on data={was} ({_describe(trained)}) but this run's "
                        f"data={picked.get('data')} has {_describe(data)}; pass data={was} to resume it")


def _check_launcher(cfg: DictConfig) -> None:
    """DDP that re-launches the script cannot run inside a local sweep: the child ranks inherit it."""
    hc = HydraConfig.get()
    strategy = cfg.trainer.get("strategy")
    ddp = isinstance(strategy, str) and strategy.startswith("ddp") and "spawn" not in strategy
    ddp = ddp or (isinstance(strategy, DictConfig) and "DDPStrategy" in strategy.get("_target_", ""))
    launcher = str(hc.runtime.choices.get("hydra/launcher", "basic"))
    if ddp and hc.mode.name == "MULTIRUN" and launcher not in ("slurm", "submitit_slurm"):
        raise UserError("trainer=ddp/ddp_cpu cannot run inside a local --multirun (the child ranks inherit the "
                        "sweep); sweep one device per run, or launch on SLURM with hydra/launcher=slurm")


def train(cfg: DictConfig) -> dict:
    picked = common.choices()
    _check_launcher(cfg)
    seed_everything(cfg.seed, workers=True, verbose=False)
    out = common.run_dir()

    dm = build_datamodule(cfg.data, cfg.seed, what=f"data={picked.get('data')}")
    here = in_place.checkpoint_in(cfg, out)  # resume=<this run>, or a requeued job: continue in place
    if here:
        cfg.ckpt_path = str(here)
    step = 0
    if cfg.ckpt_path:
        cfg.ckpt_path, info = _readable_resume(str(cfg.ckpt_path))
        _check_resume(cfg, info, picked, dm.describe())
        step = info["global_step"]
        if here:
            in_place.check_same_run(cfg, info["config"], out)
            if (done := in_place.finished(out, step, cfg.trainer.max_steps)) is not None:
                log.info(f"{common.show(out)} is trained to step {step} already; its metrics.json stands")
                common.finish({"Metrics": out / "metrics.json"}, out)
                return done
            log.info(f"continuing {common.show(out)} in place from step {step}")
    model = build_model(cfg.model, dm.describe(), cfg.optimizer, what=f"model={picked.get('model')}")
    model.run_info = {"config": common.container(cfg), "choices": picked}

    for name, node in cfg.callbacks.items():
        if node and "_target_" not in node:
            raise UserError(f"callbacks.{name} sets {list(node)} but names no class (_target_): a preset or "
                            "override configures a callback this callbacks= option leaves out; drop it or pick "
                            "callbacks=default")
    callbacks = [build(node, f"callbacks.{name}") for name, node in cfg.callbacks.items() if node]
    last = out / "checkpoints" / "last.ckpt"
    stop = Preemption(last)  # SIGTERM/SIGINT: finish the step, save it, exit 143/130
    callbacks += [ResumeState(), stop]
    loggers = [build(node, f"logger.{name}", **in_place.logger_kwargs(node, out, step))
               for name, node in (cfg.logger or {}).items() if node]
    # On SLURM, Lightning's own auto-requeue stays off: callbacks/preemption.py says why.
    slurm = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                    plugins=[AtomicCheckpointIO(), *slurm])

    try:
        trainer.fit(model, datamodule=dm, ckpt_path=cfg.ckpt_path, weights_only=True)
    except BaseException as error:
        if not stop.stopped(error):
            raise
        exit_ = stop.exit(trainer, out, ["train", *HydraConfig.get().overrides.task], show=common.show)
        common.finish({}, out)
        raise exit_ from None
    finally:
        stop.restore()

    if getattr(trainer.checkpoint_callback, "_last_global_step_saved", None) != trainer.global_step:
        trainer.save_checkpoint(last, weights_only=False)  # fast_dev_run, max_epochs, no checkpoint callback
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if not trainer.is_global_zero:
        return metrics
    protocol = {
        "command": "train", "model": picked.get("model"), "data": picked.get("data"), "seed": cfg.seed,
        "steps": trainer.global_step, "batch_size": dm.batch_size,
        "metrics": "final logged values; flows: val/nll in nats per example, val/bpd bits per dimension "
                   "of the discrete data under uniform dequantization",
    }
    if cfg.optimized_metric and cfg.optimized_metric not in metrics:
        found, how = objective_metrics(cfg.optimized_metric, model, dm, cfg.eval, cfg.seed,
                                       common.device_for(cfg.trainer))
        metrics.update(found)
        protocol.update(how)
    common.write_metrics(out, metrics, protocol)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            # Resolved where they live: data.root interpolates ${paths.data_dir}, outside these nodes.
            hparams = {k: OmegaConf.to_container(cfg[k], resolve=True)
                       for k in ("model", "data", "optimizer") if k in cfg}
            hparams.update(seed=cfg.seed, max_steps=cfg.trainer.max_steps,
                           **{f"choice/{k}": v for k, v in picked.items()})
            logger.log_hyperparams(hparams,
                                   {f"hparams/{k.replace('/', '_')}": v for k, v in metrics.items()})
            logger.finalize("success")
    tb = out / "tensorboard"
    common.finish({
        "Checkpoint": last,
        "Samples": out / "samples",
        "Metrics": out / "metrics.json",
        "TensorBoard": f"tensorboard --logdir {common.show(tb)}",
    }, out)
    return metrics
