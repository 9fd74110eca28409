"""The chosen image metrics from real and generated features, with the protocol that produced
them: shared by `gen-runner eval` (`image_metrics`, `class_accuracy_metric`, on an EvalContext) and
the in-training evaluation callback (`fidelity_metrics`)."""
from __future__ import annotations

import logging

import torch

from gen_runner.errors import UserError
from gen_runner.metrics import fidelity
from gen_runner.metrics.features import ClassifierFeatures, channel_labels
from gen_runner.metrics.modes import stacked_modes

__all__ = ["METRICS", "DC_K", "fidelity_metrics", "image_metrics", "class_accuracy_metric"]

log = logging.getLogger("gen_runner")

METRICS = ("fid", "kid", "mmd", "is", "prdc")
DC_K = 5  # density and coverage use k = 5, as Naeem et al. 2020 recommend


def fidelity_metrics(real: tuple[torch.Tensor, torch.Tensor], fake: tuple[torch.Tensor, torch.Tensor],
                     names, kid_subsets: int = 100, kid_subset_size: int = 1000, is_splits: int = 10,
                     prdc_k: int = 3, seed: int = 0) -> tuple[dict[str, float], dict]:
    """`names` from METRICS, computed on (features, logits) pairs; returns (metrics, protocol)."""
    unknown = set(names) - set(METRICS)
    if unknown:
        raise UserError(f"eval.metrics: unknown {sorted(unknown)}; choose from {list(METRICS)}")
    (real_f, _), (fake_f, fake_logits) = real, fake
    metrics, protocol = {}, {}
    if "fid" in names:
        metrics["fid"] = fidelity.fid(real_f, fake_f)
    if "kid" in names:
        size = fidelity.kid_subset_size(len(real_f), len(fake_f), kid_subset_size)
        metrics["kid"], metrics["kid_std"] = fidelity.kid(real_f, fake_f, kid_subsets, size, seed=seed)
        protocol.update(kid_subsets=kid_subsets, kid_subset_size=size, kid_kernel="(x.y/d + 1)^3")
    if "mmd" in names:
        metrics["mmd2"], metrics["mmd"], sigma = fidelity.gaussian_mmd(real_f, fake_f)
        protocol.update(mmd_kernel="exp(-||x - y||^2 / (2 sigma^2)), unbiased MMD^2 (Gretton et al. 2012); "
                                   "mmd = sqrt(max(mmd2, 0))", mmd_sigma=sigma,
                        mmd_sigma_rule="median distance among the first 1,000 real and 1,000 generated features")
    if "is" in names:
        metrics["is"], metrics["is_std"] = fidelity.inception_score(fake_logits, is_splits, seed=seed)
        protocol["is_splits"] = is_splits
    if "prdc" in names:
        metrics["precision"], metrics["recall"] = fidelity.precision_recall(real_f, fake_f, prdc_k)
        metrics["density"], metrics["coverage"] = fidelity.density_coverage(real_f, fake_f, DC_K)
        protocol.update(prdc_k=prdc_k, density_coverage_k=DC_K)
    return metrics, protocol


def _stacked(ctx) -> bool:
    """Stacked MNIST scored by a one-channel digit classifier: the mode of a sample is its digit triple."""
    return getattr(ctx.datamodule, "channel_modes", False) and getattr(ctx.extractor, "shape", (0,))[0] == 1


def image_metrics(ctx) -> tuple[dict, dict]:
    """`eval.metrics` of `eval.num_samples` generated images against the real split, in the
    feature space of `eval.features`; on Stacked MNIST with a digit classifier, the modes."""
    opts, extractor, model = ctx.options, ctx.extractor, ctx.model
    protocol = {"features": extractor.name, "features_sha256": extractor.sha256, "num_generated": opts.num_samples,
                "image_size": extractor.image_size, "resize": extractor.resize}
    if _stacked(ctx):  # each channel classified by the digit classifier: the triple is the mode
        batches = model.sample_batches(opts.num_samples, ctx.temperature, ctx.generator(), opts.batch_size)
        digits = torch.cat([channel_labels(extractor, images) for images in batches])
        protocol.update(modes="digit triples, each channel classified by the features classifier; 1,000 modes",
                        reverse_kl="KL(generated mode histogram || uniform over 1,000), nats")
        return stacked_modes(digits), protocol
    real, fake = ctx.real, ctx.generated
    metrics, details = fidelity_metrics(real, (fake.features, fake.logits), list(opts.metrics), opts.kid_subsets,
                                        opts.kid_subset_size, opts.is_splits, opts.prdc_k, ctx.seed)
    return metrics, protocol | {"num_real": len(real[0]), "split": opts.split, **details}


def class_accuracy_metric(ctx) -> tuple[dict, dict] | None:
    """A conditional generator's `class_accuracy`: the share of its samples (labels uniform over the
    classes) that a classifier of the same classes assigns their intended label."""
    if not ctx.options.features or not isinstance(ctx.extractor, ClassifierFeatures) or _stacked(ctx):
        return None
    if ctx.extractor.model.num_classes != ctx.model.num_classes:
        log.warning("no class_accuracy: the features classifier has %d classes, the model %d",
                    ctx.extractor.model.num_classes, ctx.model.num_classes)
        return None
    generated = ctx.generated
    return {"class_accuracy": fidelity.class_accuracy(generated.logits, generated.labels.cpu())}, {
        "class_accuracy": "share of generated samples the features classifier assigns their intended label; "
                          "labels uniform over the classes"}
