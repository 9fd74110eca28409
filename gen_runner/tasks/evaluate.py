"""`gen-runner eval`: the family's metrics for a checkpoint, on its own test split or other data.

Classifiers: `accuracy`, `error` and `nll` on the split. Flows: `nll` (nats per example) and, for images,
`bpd`, both the importance-weighted dequantization bound over `eval.iw_samples` draws per image.
GANs on the 2-D mixtures: `modes`, `high_quality_pct` and `reverse_kl` on 2,500 samples, as in
PacGAN/VEEGAN. Generators on images, with `eval.features=`: FID, KID, IS, precision/recall,
density/coverage against the real split; conditional generators, with a classifier's features,
also `class_accuracy`: the share of samples the classifier assigns their intended label (labels
drawn uniformly over the classes); InfoGAN, with a classifier's features, also `code_accuracy`:
how well its first categorical code predicts the classifier's label (best code-to-class map); on
Stacked MNIST with a digit classifier, the modes captured out of 1,000 and the KL to uniform.
GANs that also classify (ssgan: D's K class logits): `accuracy` and `error` on the labelled split.
Models with an encoder (BiGAN, VEEGAN): `reconstruction_mse` and, on labelled data,
`probe_accuracy` (gen_runner/metrics/inference.py).
metrics.json's `protocol` says how each was measured.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from gen_runner.data.datamodule import StackedDataModule, ToyDataModule
from gen_runner.data.toy import GaussianMixture
from gen_runner.errors import UserError
from gen_runner.metrics.features import ClassifierFeatures, channel_labels, extract, make_extractor, real_features
from gen_runner.metrics.fidelity import class_accuracy, code_accuracy
from gen_runner.metrics.inference import encode_split, linear_probe, reconstruction_mse
from gen_runner.metrics.likelihood import likelihood
from gen_runner.metrics.modes import mode_coverage, stacked_modes
from gen_runner.metrics.suite import fidelity_metrics
from gen_runner.tasks import common

__all__ = ["evaluate"]

log = logging.getLogger("gen_runner")

SPLITS = ("train", "val", "test")


def _splits(opts) -> tuple[str, ...]:
    return SPLITS if opts.split == "all" else (opts.split,)


def _pooled(found: list[dict]) -> tuple[dict, int]:
    """Per-split results (each with `num_examples`) -> their example-weighted means, and the count."""
    n = sum(f["num_examples"] for f in found)
    return {k: sum(f[k] * f["num_examples"] for f in found) / n for k in found[0] if k != "num_examples"}, n


def _flow_metrics(cfg, model, dm, device) -> tuple[dict, dict]:
    if tuple(dm.shape) != model.data_shape:
        raise UserError(f"the data has examples of shape {tuple(dm.shape)} but the model was trained on "
                        f"{model.data_shape}; pass data of the same shape")
    if cfg.eval.iw_samples < 1:
        raise UserError(f"eval.iw_samples={cfg.eval.iw_samples}: pass at least 1 dequantization draw per image")
    metrics, n = _pooled([likelihood(model, dm.loader(s), device, cfg.seed, cfg.eval.iw_samples)
                          for s in _splits(cfg.eval)])
    protocol = {"split": cfg.eval.split, "num_examples": n, "unit": "nll: nats per example"}
    if model.is_image:
        protocol.update(dequantization=model.dequantization, iw_samples=cfg.eval.iw_samples,
                        num_levels=model.num_levels,
                        unit="nll: nats per image; bpd: bits per dimension of the discrete data",
                        bound="log P(x) >= log mean_s exp(log p(u_s) - D log K - log q(v_s|x)), "
                              "iw_samples dequantization draws v_s per image")
    return metrics, protocol


def _classifier_metrics(cfg, model, dm, device) -> tuple[dict, dict]:
    metrics, n = _pooled([model.score(dm.loader(s), device) for s in _splits(cfg.eval)])
    return metrics, {"split": cfg.eval.split, "num_examples": n, "unit": "nll: nats per example"}


def _classification_metrics(cfg, model, dm, device) -> tuple[dict, dict]:
    """A GAN whose discriminator classifies (ssgan): its accuracy and error on the split's labels."""
    if dm.num_classes is None:
        log.warning("no accuracy: the data has no labels")
        return {}, {}
    scores, n = _pooled([model.score(dm.loader(s), device) for s in _splits(cfg.eval)])
    return {"accuracy": scores["accuracy"], "error": scores["error"]}, {
        "split": cfg.eval.split, "num_classified": n,
        "accuracy": "the discriminator's argmax over the K data classes against the labels of the split "
                    "(every labelled example; hidden train labels skipped); error = 1 - accuracy"}


def _mode_metrics(cfg, model, dm) -> tuple[dict, dict]:
    distribution = dm.distribution
    generator = torch.Generator().manual_seed(cfg.seed)
    samples = model.sample(cfg.eval.num_samples, generator=generator, batch_size=cfg.eval.batch_size).cpu()
    metrics = mode_coverage(samples, distribution.centers, distribution.std)
    protocol = {"num_samples": cfg.eval.num_samples, "threshold_std": 3.0, "num_modes": len(distribution.centers),
                "assignment": "nearest mode; captured = at least one sample within 3 std",
                "reverse_kl": "KL(generated mode histogram || uniform), nats"}
    return metrics, protocol


def _inference_metrics(cfg, model, dm, device) -> tuple[dict, dict]:
    """Models with an encoder (BiGAN, VEEGAN): reconstruction error, and a linear probe on E(x)."""
    loaders = [dm.loader(s) for s in _splits(cfg.eval)]
    n = sum(len(loader.dataset) for loader in loaders)
    metrics = {"reconstruction_mse": sum(reconstruction_mse(model, loader, device) * len(loader.dataset)
                                         for loader in loaders) / n}
    protocol = {"reconstruction_mse": "mean over the split of ||x - G(E(x))||^2 in data space "
                                      "(images in [0, 1]: per pixel; points: squared distance)"}
    if dm.num_classes is not None and cfg.eval.split != "train":
        evaluated = [encode_split(model, loader, device) for loader in loaders]
        test = tuple(np.concatenate(parts) for parts in zip(*evaluated))
        metrics["probe_accuracy"] = linear_probe(encode_split(model, dm.loader("train"), device), test, cfg.seed)
        protocol["probe_accuracy"] = ("logistic regression (standardised features, L2, C = 1) on E(x), fitted on "
                                      "the train split, accuracy on the evaluated split")
    return metrics, protocol


def _image_metrics(cfg, model, dm, device, data_cfg) -> tuple[dict, dict]:
    opts = cfg.eval
    extractor = make_extractor(opts.features, opts.features_ckpt, device)
    generator = torch.Generator().manual_seed(cfg.seed)
    labels = None if model.num_classes is None else model.draw_labels(opts.num_samples, generator)
    batches = model.sample_batches(opts.num_samples, cfg.temperature, generator, opts.batch_size, labels)
    protocol = {"features": extractor.name, "features_sha256": extractor.sha256, "num_generated": opts.num_samples,
                "image_size": extractor.image_size, "resize": extractor.resize}

    stacked = isinstance(dm, StackedDataModule) and getattr(extractor, "shape", (0,))[0] == 1
    if stacked:  # each channel classified by the digit classifier: the triple is the mode
        digits = torch.cat([channel_labels(extractor, images) for images in batches])
        protocol.update(modes="digit triples, each channel classified by the features classifier; 1,000 modes",
                        reverse_kl="KL(generated mode histogram || uniform over 1,000), nats")
        return stacked_modes(digits), protocol

    # class_accuracy: a conditional model's samples under a classifier of the same classes
    scored = labels is not None and isinstance(extractor, ClassifierFeatures)
    if scored and extractor.model.num_classes != model.num_classes:
        log.warning("no class_accuracy: the features classifier has %d classes, the model %d",
                    extractor.model.num_classes, model.num_classes)
        scored = False
    real = torch.cat([dm.splits[s].tensors[0] for s in _splits(opts)])[: opts.num_real]
    key = {"data": common.container(data_cfg) if isinstance(data_cfg, DictConfig) else data_cfg,
           "split": opts.split, "num_real": len(real), "image_size": extractor.image_size}
    cache = Path(opts.cache_dir).expanduser() if opts.cache_dir else Path.home() / ".cache/gen-runner/features"
    *real_fl, hit = real_features(extractor, real, dm.num_levels, key, cache, opts.batch_size)
    log.info("real features: %s", "from the cache" if hit else f"computed and cached in {cache}")
    fake_fl = extract(extractor, batches, opts.num_samples, "generated")
    metrics, details = fidelity_metrics(tuple(real_fl), fake_fl, list(opts.metrics), opts.kid_subsets,
                                        opts.kid_subset_size, opts.is_splits, opts.prdc_k, cfg.seed)
    protocol.update(num_real=len(real), split=opts.split, **details)
    if scored:
        metrics["class_accuracy"] = class_accuracy(fake_fl[1], labels.cpu())
        protocol["class_accuracy"] = ("share of generated samples the features classifier assigns their intended "
                                      "label; labels uniform over the classes")
    if hasattr(model, "split_codes") and model.categorical and isinstance(extractor, ClassifierFeatures):
        noise, _ = model.draw_inputs(opts.num_samples, torch.Generator().manual_seed(cfg.seed))  # what was decoded
        codes = model.split_codes(noise[:, model.noise_dim:])[0][0].argmax(1).cpu()
        metrics["code_accuracy"] = code_accuracy(fake_fl[1], codes)
        protocol["code_accuracy"] = ("InfoGAN: accuracy of the first categorical code as a predictor of the features "
                                     "classifier's label, under the best one-to-one code-to-class map (Hungarian)")
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

    family, metrics, protocol = info["family"], {}, {}
    if family == "classifier":
        metrics, protocol = _classifier_metrics(cfg, model, dm, device)
    if family == "flow":
        metrics, protocol = _flow_metrics(cfg, model, dm, device)
    if family == "gan" and isinstance(dm, ToyDataModule) and isinstance(dm.distribution, GaussianMixture):
        metrics, protocol = _mode_metrics(cfg, model, dm)
    if hasattr(model, "encode"):
        extra, extra_protocol = _inference_metrics(cfg, model, dm, device)
        metrics.update(extra)
        protocol.update(extra_protocol)
    if family in ("gan", "flow") and cfg.eval.features:
        if not model.is_image:
            raise UserError("eval.features applies to images; this model generates points")
        extra, extra_protocol = _image_metrics(cfg, model, dm, device, data_cfg)
        metrics.update(extra)
        protocol.update(extra_protocol)
    if family == "gan" and hasattr(model, "score"):
        extra, extra_protocol = _classification_metrics(cfg, model, dm, device)
        metrics.update(extra)
        protocol.update(extra_protocol)
    if not metrics:
        raise UserError(f"no metric for a GAN on data={data_name} without features: pass eval.features=classifier "
                        "eval.features_ckpt=<classifier checkpoint> (or eval.features=inception) for FID/KID/IS; "
                        "mode coverage needs ring8, grid25 or gauss8")
    protocol = {"command": "eval", "checkpoint": str(cfg.ckpt_path), "step": ckpt.get("global_step"),
                "model": info["choices"].get("model"), "data": data_name, "seed": cfg.seed, **protocol}

    out = common.run_dir()
    common.write_metrics(out, metrics, protocol)
    common.log_metrics(cfg.logger, metrics, step=ckpt.get("global_step") or 0)
    summary = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in metrics.items()}
    common.finish({**summary, "Metrics": out / "metrics.json"}, out)
    return metrics
