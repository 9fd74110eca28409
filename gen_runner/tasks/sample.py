"""`gen-runner sample`: draw from a checkpoint into <run>/samples/ as PNG, .pt and .npy.

Images are saved in [0, 1] (N x C x H x W), points as the data (N x D). Models conditioned on labels
sample `labels=[...]` (one sample per entry) or `per_class=N` (N of each class, a PNG row per class)
instead of `num_samples`, and write the samples' labels to labels.npy.

`mode=<name>` picks what is drawn among the sample modes the checkpoint's model declares
(gen_runner/capabilities.py; every generator has samples, interpolate and arithmetic, variants add
their own); `mode.<option>=...` sets the mode's options (configs/mode/<name>.yaml). Every mode
writes what its picture shows, row by row, to samples.pt / samples.npy.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from gen_runner.capabilities import SampleRequest, sample_modes
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.errors import UserError
from gen_runner.instantiate import build_datamodule
from gen_runner.tasks import common
from gen_runner.visualize import save_samples_picture

log = logging.getLogger("gen_runner")

__all__ = ["sample"]


def _labels(cfg: DictConfig, model, info: dict) -> torch.Tensor | None:
    """The labels asked for (labels= or per_class=), or None; one line if the model cannot take them."""
    if cfg.labels is None and cfg.per_class is None:
        return None
    if cfg.labels is not None and cfg.per_class is not None:
        raise UserError("pass labels=[...] or per_class=N, not both")
    if "labels" not in model.inputs:
        raise UserError(f"{cfg.ckpt_path} holds an unconditional model (model={info['choices'].get('model')}): "
                        "labels and per_class need a conditional one (model=cgan, acgan); drop them")
    log.info("labels/per_class given: num_samples is ignored")
    return model.check_labels(cfg.labels) if cfg.labels is not None else model.class_rows(cfg.per_class)


def _picture(samples: torch.Tensor, layout: list[int] | int | None, path) -> Path:
    """The samples' picture; images in rows of the given lengths, shorter rows padded with white."""
    if samples.dim() != 4 or not isinstance(layout, list):
        return save_samples_picture(samples, path, nrow=layout)
    width, rows = max(layout), list(torch.split(samples, layout))
    blank = torch.ones(1, *samples.shape[1:])
    tiles = torch.cat([torch.cat([row, blank.expand(width - len(row), -1, -1, -1)]) for row in rows])
    return save_samples_picture(tiles, path, nrow=width)


def sample(cfg: DictConfig) -> torch.Tensor:
    if cfg.num_samples < 1:
        raise UserError(f"num_samples={cfg.num_samples}: ask for at least one sample")
    ckpt = load_checkpoint(cfg.ckpt_path)
    info = ckpt["gen_runner"]
    model_name = info["choices"].get("model")
    device = common.device_for(cfg.trainer)
    model = model_from_checkpoint(ckpt, cfg.weights).to(device)
    modes, mode = sample_modes(model), common.choices().get("mode", "samples")
    if mode == "samples" and mode not in modes and len(modes) == 1:  # image-to-image models: their one mode
        mode = next(iter(modes))
    if not modes:
        raise UserError(f"{cfg.ckpt_path} holds a model={model_name}, which does not sample; "
                        "pass a GAN or flow checkpoint")
    if mode not in modes:
        raise UserError(f"mode={mode}: a model={model_name} checkpoint samples in the modes {', '.join(modes)}; "
                        "pick one of them")
    if cfg.temperature != 1.0 and model.temperature_means is None:
        log.warning("temperature=%s is ignored: model=%s has no temperature (it scales a flow's base "
                    "distribution)", cfg.temperature, model_name)
    if cfg.input is not None and "image" not in model.inputs:
        raise UserError(f"input={cfg.input}: model={model_name} generates from noise, not from images; drop input= "
                        "(image-to-image models take it: pix2pix, cyclegan, srgan, context_encoder)")
    labels = _labels(cfg, model, info)
    request = SampleRequest(
        num_samples=cfg.num_samples if labels is None else len(labels),
        options=common.container(cfg.mode) if cfg.mode is not None else {},
        generator=torch.Generator().manual_seed(cfg.seed), temperature=cfg.temperature,
        batch_size=cfg.batch_size, labels=labels, per_class=cfg.per_class, input=cfg.input,
        data=lambda: build_datamodule(info["config"]["data"], info["config"]["seed"],
                                      what=f"data={info['choices'].get('data')} (the checkpoint's)"))
    with model.truncated(cfg.truncation):
        samples, labels, layout = modes[mode].draw(request)

    out = common.run_dir() / "samples"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(samples, out / "samples.pt")
    np.save(out / "samples.npy", samples.numpy())
    files = {"Tensors": out / "samples.pt", "Arrays": out / "samples.npy"}
    if labels is not None:
        np.save(out / "labels.npy", labels.cpu().numpy())
        files["Labels"] = out / "labels.npy"
    picture = _picture(samples, layout, out / f"{mode}.png")
    common.finish({"Samples": picture, **files}, common.run_dir())
    return samples
