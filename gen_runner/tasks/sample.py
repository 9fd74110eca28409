"""`gen-runner sample`: draw samples from a checkpoint into <run>/samples/ as PNG, .pt and .npy.

Images are saved in [0, 1] (N x C x H x W), points as the data (N x D).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from omegaconf import DictConfig

from gen_runner.errors import UserError
from gen_runner.tasks import common
from gen_runner.visualize import save_samples_picture

log = logging.getLogger("gen_runner")

__all__ = ["sample"]


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
    generator = torch.Generator().manual_seed(cfg.seed)
    samples = model.sample(cfg.num_samples, cfg.temperature, generator, cfg.batch_size).cpu()
    out = common.run_dir() / "samples"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(samples, out / "samples.pt")
    np.save(out / "samples.npy", samples.numpy())
    picture = save_samples_picture(samples, out / "samples.png")
    common.finish({"Samples": picture, "Tensors": out / "samples.pt", "Arrays": out / "samples.npy"},
                  common.run_dir())
    return samples
