"""`gen-runner sample`: draw samples from a checkpoint into <run>/samples/ as PNG, .pt and .npy.

Images are saved in [0, 1] (N x C x H x W), points as the data (N x D). Conditional models
(cgan, acgan) sample `labels=[...]` (one sample per entry) or `per_class=N` (N of each class, a
PNG row per class) instead of `num_samples`, and write the samples' labels to labels.npy.

`mode` picks what is drawn (gen_runner/walks.py says how): `samples` (the default), `interpolate`
(`num_samples` rows of `steps` samples between two random latents, interpolate.png a row per path)
and `arithmetic` (Radford et al. 2015's vector arithmetic, arithmetic.png: a row per operand, then
the result) and, for InfoGAN, `traverse` (traverse.png: a row per value of the first categorical
code, continuous code `code` swept over [-span, span] along the `steps` columns, as the InfoGAN
paper's fig. 2) and, for models with an encoder (BiGAN, VEEGAN), `reconstruct` (reconstruct.png:
the first `num_samples` examples of the checkpoint's test split in rows of `steps`, each row
followed by its reconstructions G(E(x))). Every mode writes what its picture shows, row by row, to
samples.pt / samples.npy (and the labels of a conditional model's samples to labels.npy).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from gen_runner.errors import UserError
from gen_runner import walks
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
    if model.num_classes is None:
        raise UserError(f"{cfg.ckpt_path} holds an unconditional model (model={info['choices'].get('model')}): "
                        "labels and per_class need a conditional one (model=cgan, acgan); drop them")
    log.info("labels/per_class given: num_samples is ignored")
    return model.check_labels(cfg.labels) if cfg.labels is not None else model.class_rows(cfg.per_class)


def _decode(model, noise: torch.Tensor, labels: torch.Tensor | None, temperature: float,
            batch_size: int | None) -> torch.Tensor:
    step = batch_size or len(noise)
    return torch.cat([model.decode(noise[i : i + step], temperature,
                                   *(() if labels is None else (labels[i : i + step],))).cpu()
                      for i in range(0, len(noise), step)])


def _draw(cfg: DictConfig, model, labels: torch.Tensor | None, generator: torch.Generator, info: dict
          ) -> tuple[torch.Tensor, torch.Tensor | None, list[int] | int | None]:
    """(samples, their labels or None, the picture's layout: images a row, or each row's length)."""
    n = cfg.num_samples if labels is None else len(labels)
    if cfg.mode == "samples":
        noise, labels = model.draw_inputs(n, generator, labels)
        layout = cfg.per_class
    elif cfg.mode == "interpolate":
        noise, labels = walks.interpolation_rows(model, n, cfg.steps, cfg.interpolation, generator, labels)
        layout = cfg.steps
    elif cfg.mode == "arithmetic":
        if labels is not None:
            raise UserError("mode=arithmetic takes its samples' labels from the seed's draw; drop labels/per_class")
        parts = walks.vector_arithmetic(model, cfg.num_samples, generator, cfg.groups, cfg.group_size)
        operands, results = parts["operand_noise"], parts["result_noise"]
        noise = torch.cat([operands.flatten(0, 1), results])
        labels = None if parts["result_labels"] is None else torch.cat([parts["operand_labels"].flatten(),
                                                                        parts["result_labels"]])
        layout = [operands.shape[1]] * len(operands) + [len(results)]
    elif cfg.mode == "reconstruct":
        samples, layout = _reconstructions(cfg, model, labels, info)
        return samples, None, layout
    elif cfg.mode == "traverse":
        if not hasattr(model, "traverse_inputs"):
            raise UserError("mode=traverse varies an InfoGAN's latent codes: pass a model=infogan checkpoint")
        rows = model.categorical[0] if model.categorical else 1
        noise = model.traverse_inputs(cfg.code, rows, cfg.steps, cfg.span, generator)
        layout = cfg.steps
    else:
        raise UserError(f"mode={cfg.mode!r}: choose samples, interpolate, arithmetic, traverse or reconstruct")
    return _decode(model, noise, labels, cfg.temperature, cfg.batch_size), labels, layout


def _reconstructions(cfg: DictConfig, model, labels, info: dict) -> tuple[torch.Tensor, list[int]]:
    """The first `num_samples` examples of the checkpoint's test split and G(E(x)), in row pairs;
    `info`: the checkpoint's run record."""
    if not hasattr(model, "reconstruct"):
        raise UserError("mode=reconstruct needs a model with an encoder: pass a model=bigan (or veegan) checkpoint")
    if labels is not None:
        raise UserError("mode=reconstruct draws data examples, not classes; drop labels/per_class")
    dm = common.build_datamodule(info["config"]["data"], info["config"]["seed"],
                                 what=f"data={info['choices'].get('data')} (the checkpoint's)")
    x = dm.splits["test"].tensors[0][: cfg.num_samples]
    step = cfg.batch_size or len(x)
    recon = torch.cat([model.reconstruct(x[i : i + step]).cpu() for i in range(0, len(x), step)])
    rows = [part for pair in zip(torch.split(model.to_unit(x), cfg.steps), torch.split(recon, cfg.steps))
            for part in pair]
    return torch.cat(rows), [len(r) for r in rows]


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
    ckpt = common.load_checkpoint(cfg.ckpt_path)
    info = ckpt["gen_runner"]
    if info["family"] not in ("gan", "flow"):
        raise UserError(f"{cfg.ckpt_path} holds a {info['family']}, which does not sample; "
                        "pass a GAN or flow checkpoint")
    if info["family"] == "gan" and cfg.temperature != 1.0:
        log.warning("temperature=%s is ignored: it scales a flow's base distribution, not a GAN's latent",
                    cfg.temperature)
    device = common.device_for(cfg.trainer)
    model = common.model_from_checkpoint(ckpt).to(device)
    labels = _labels(cfg, model, info)
    samples, labels, layout = _draw(cfg, model, labels, torch.Generator().manual_seed(cfg.seed), info)
    out = common.run_dir() / "samples"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(samples, out / "samples.pt")
    np.save(out / "samples.npy", samples.numpy())
    files = {"Tensors": out / "samples.pt", "Arrays": out / "samples.npy"}
    if labels is not None:
        np.save(out / "labels.npy", labels.cpu().numpy())
        files["Labels"] = out / "labels.npy"
    picture = _picture(samples, layout, out / f"{cfg.mode}.png")
    common.finish({"Samples": picture, **files}, common.run_dir())
    return samples
