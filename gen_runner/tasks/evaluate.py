"""`gen-runner eval`: the family's metrics for a checkpoint, on its own test split or other data.

Flows: `nll` (nats per example) and, for images, `bpd`. GANs on the 2-D mixtures: `modes`,
`high_quality_pct` and `reverse_kl` on `num_samples` (2,500) samples, as in PacGAN/VEEGAN.
"""
from __future__ import annotations

import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from gen_runner.data.datamodule import ToyDataModule
from gen_runner.data.toy import GaussianMixture
from gen_runner.errors import UserError
from gen_runner.metrics.likelihood import likelihood
from gen_runner.metrics.modes import mode_coverage
from gen_runner.tasks import common

__all__ = ["evaluate"]

SPLITS = ("train", "val", "test")


def _flow_metrics(cfg, model, dm, device) -> tuple[dict, dict]:
    if tuple(dm.shape) != model.data_shape:
        raise UserError(f"the data has examples of shape {tuple(dm.shape)} but the model was trained on "
                        f"{model.data_shape}; pass data of the same shape")
    loaders = [dm._loader(s) for s in (SPLITS if cfg.eval.split == "all" else (cfg.eval.split,))]
    found = [likelihood(model, loader, device, cfg.seed) for loader in loaders]
    n = sum(f["num_examples"] for f in found)
    metrics = {k: sum(f[k] * f["num_examples"] for f in found) / n for k in found[0] if k != "num_examples"}
    protocol = {"split": cfg.eval.split, "num_examples": n, "unit": "nll: nats per example"}
    if model.is_image:
        protocol.update(dequantization="uniform, one draw per pixel", num_levels=model.num_levels,
                        unit="nll: nats per image; bpd: bits per dimension of the discrete data")
    return metrics, protocol


def _gan_metrics(cfg, model, dm, device, data_name) -> tuple[dict, dict]:
    distribution = getattr(dm, "distribution", None)
    if not isinstance(dm, ToyDataModule) or not isinstance(distribution, GaussianMixture):
        raise UserError(f"no GAN metric for data={data_name} yet: eval scores GANs on the Gaussian mixtures "
                        "(ring8, grid25, gauss8); image metrics (FID/KID/IS) come with the evaluation suite")
    generator = torch.Generator().manual_seed(cfg.seed)
    samples = model.sample(cfg.eval.num_samples, generator=generator, batch_size=cfg.eval.batch_size).cpu()
    metrics = mode_coverage(samples, distribution.centers, distribution.std)
    protocol = {"num_samples": cfg.eval.num_samples, "threshold_std": 3.0, "num_modes": len(distribution.centers),
                "assignment": "nearest mode; captured = at least one sample within 3 std",
                "reverse_kl": "KL(generated mode histogram || uniform), nats"}
    return metrics, protocol


def evaluate(cfg: DictConfig) -> dict:
    if cfg.eval.split not in (*SPLITS, "all"):
        raise UserError(f"eval.split={cfg.eval.split!r}: choose train, val, test or all")
    ckpt = common.load_checkpoint(cfg.ckpt_path)
    info = ckpt["gen_runner"]
    seed_everything(cfg.seed, verbose=False)
    device = common.device_for(cfg.trainer)
    model = common.model_from_checkpoint(ckpt).to(device)
    if cfg.data is not None:
        data_cfg, data_name = cfg.data, common.choices().get("data")
    else:
        data_cfg, data_name = info["config"]["data"], info["choices"].get("data")
    dm = common.build_datamodule(data_cfg, info["config"]["seed"], what=f"data={data_name}")

    if info["family"] == "flow":
        metrics, protocol = _flow_metrics(cfg, model, dm, device)
    elif info["family"] == "gan":
        metrics, protocol = _gan_metrics(cfg, model, dm, device, data_name)
    else:
        raise UserError(f"{cfg.ckpt_path} holds a {info['family']} model, which `eval` does not score")
    protocol = {"command": "eval", "checkpoint": str(cfg.ckpt_path), "step": ckpt.get("global_step"),
                "model": info["choices"].get("model"), "data": data_name, "seed": cfg.seed, **protocol}

    out = common.run_dir()
    common.write_metrics(out, metrics, protocol)
    common.log_metrics(cfg.logger, metrics, step=ckpt.get("global_step") or 0)
    summary = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in metrics.items()}
    common.finish({**summary, "Metrics": out / "metrics.json"}, out)
    return metrics
