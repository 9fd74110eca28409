"""The chosen image metrics from real and generated features, with the protocol that produced
them: shared by `gen-runner eval` and the in-training evaluation callback."""
from __future__ import annotations

import torch

from gen_runner.errors import UserError
from gen_runner.metrics import fidelity

__all__ = ["METRICS", "DC_K", "fidelity_metrics"]

METRICS = ("fid", "kid", "is", "prdc")
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
    if "is" in names:
        metrics["is"], metrics["is_std"] = fidelity.inception_score(fake_logits, is_splits, seed=seed)
        protocol["is_splits"] = is_splits
    if "prdc" in names:
        metrics["precision"], metrics["recall"] = fidelity.precision_recall(real_f, fake_f, prdc_k)
        metrics["density"], metrics["coverage"] = fidelity.density_coverage(real_f, fake_f, DC_K)
        protocol.update(prdc_k=prdc_k, density_coverage_k=DC_K)
    return metrics, protocol
