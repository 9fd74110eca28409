"""How well a model classifies: accuracy, error and cross-entropy on labelled examples. Scores a
`model=classifier` and a GAN whose discriminator classifies (ssgan)."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gen_runner.errors import UserError
from gen_runner.metrics.context import pooled

__all__ = ["classification_scores", "classification_metrics"]


@torch.no_grad()
def classification_scores(logits_of: Callable[[torch.Tensor], torch.Tensor], loader, device: torch.device) -> dict:
    """Accuracy, error and mean cross-entropy (nats) of `logits_of` (data as delivered -> class
    logits) over the labelled examples of `loader`, whose batches start (x, y); hidden labels (-1,
    a semi-supervised train split) are skipped."""
    correct = total = 0
    nll = 0.0
    for batch in loader:
        x, y = batch[0].to(device), batch[1].to(device)
        labelled = y >= 0
        if not labelled.all():
            x, y = x[labelled], y[labelled]
        if not len(y):
            continue
        logits = logits_of(x)
        correct += (logits.argmax(1) == y).sum().item()
        nll += F.cross_entropy(logits, y, reduction="sum").item()
        total += len(y)
    if not total:
        raise UserError("no labelled examples to score: evaluate on labelled data (eval.split=test, or data=...)")
    return {"accuracy": correct / total, "error": 1 - correct / total, "nll": nll / total, "num_examples": total}


def classification_metrics(ctx, logits_of: Callable[[torch.Tensor], torch.Tensor], keys=("accuracy", "error", "nll"),
                           what: str = "the model's argmax over its classes") -> tuple[dict, dict] | None:
    """`keys` of `classification_scores` pooled over the evaluated split(s); None on unlabelled data."""
    if ctx.datamodule.num_classes is None:
        return None
    scores, n = pooled([classification_scores(logits_of, loader, ctx.device) for loader in ctx.loaders()])
    return {k: scores[k] for k in keys}, {
        "split": ctx.options.split, "num_classified": n,
        "accuracy": f"{what} against the labels of the split (every labelled example; hidden train labels "
                    "skipped); error = 1 - accuracy; nll: cross-entropy in nats per example"}
