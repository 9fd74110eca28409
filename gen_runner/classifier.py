"""`model=classifier`: a supervised classifier trained and evaluated with the same commands.

Its checkpoint is the offline feature extractor of the image metrics for its domain
(`eval.features=classifier eval.features_ckpt=...`): penultimate features for FID, KID,
precision/recall, density/coverage, logits for IS, and per-channel digit labels for Stacked MNIST.
On semi-supervised data (`data.labels_per_class=N`) it trains on the N labelled examples per class
alone: the baseline a semi-supervised model (model=ssgan) has to beat.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.base import RunnerModule
from gen_runner.capabilities import eval_metric
from gen_runner.errors import UserError
from gen_runner.metrics.classification import classification_metrics

__all__ = ["ClassifierModule"]


class ClassifierModule(RunnerModule):
    family = "classifier"

    def __init__(self, net: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None):
        super().__init__(data, optimizer)
        if not data.get("num_classes"):
            raise UserError("model=classifier needs labelled data (digits, mnist, fashion_mnist, a tensor_file "
                            "with labels, an image_folder with class subfolders)")
        self.num_classes = data["num_classes"]
        self.net = net(data_shape=self.data_shape, num_classes=self.num_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of data in [0, 1] (images) or as given (points)."""
        return self.net.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch[-2:]  # (x, y), or on semi-supervised data (x, y, x_labelled, y_labelled): the labelled pair
        logits = self.net(self.to_unit(x))
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.argmax(1) == y).float().mean()
        self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": accuracy}, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    @eval_metric("accuracy, error, nll", needs="labelled data")
    def classification(self, ctx):
        return classification_metrics(ctx, lambda x: self.net(self.to_unit(x)))
