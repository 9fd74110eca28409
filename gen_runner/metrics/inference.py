"""What a model that infers latents (an encoder E: x -> z, as BiGAN/ALI's and VEEGAN's) is scored on.

- `reconstruction_mse`: E||x - G(E(x))||^2 per example, in data space (images in [0, 1], the sum
  over pixels divided by their number, i.e. the mean squared error per dimension; points: the
  squared distance). BiGAN learns E as G's inverse only through the adversarial game, so this is
  how close the joint distributions came, not a trained objective.
- `probe_accuracy`: the representation test of the BiGAN paper (its MNIST and ImageNet
  experiments classify on E's features): a multinomial logistic regression (scikit-learn, L2,
  C = 1, features standardised on the training split) fitted on E(x) of the training split and
  scored on the evaluated split.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["encode_split", "reconstruction_mse", "linear_probe", "inference_metrics"]


@torch.no_grad()
def encode_split(model, loader, device) -> tuple[np.ndarray, np.ndarray | None]:
    """(E(x) [N, latent_dim] (a stochastic encoder's mean), labels [N] or None) over every example of `loader`."""
    features, labels = [], []
    for batch in loader:
        features.append(model.encode(model.preprocess(batch[0].to(device)), sample=False).cpu())
        if len(batch) > 1:
            labels.append(batch[1])
    return torch.cat(features).numpy(), torch.cat(labels).numpy() if labels else None


@torch.no_grad()
def reconstruction_mse(model, loader, device) -> float:
    """Mean over the examples of ||x - G(E(x))||^2, per dimension for images (data space)."""
    total, n = 0.0, 0
    for batch in loader:
        x = batch[0].to(device)
        error = (model.to_unit(x) - model.reconstruction(x)).pow(2).flatten(1)
        total += (error.mean(1) if model.is_image else error.sum(1)).sum().item()
        n += len(x)
    return total / n


def linear_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], seed: int = 0) -> float:
    """Test accuracy of a logistic regression fitted on (features, labels) of `train`; labels -1
    (hidden, data.labels_per_class) are left out of the fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    features, labels = train
    probe.fit(features[labels >= 0], labels[labels >= 0])
    return float(probe.score(*test))


def inference_metrics(ctx) -> tuple[dict, dict]:
    """`reconstruction_mse` over the evaluated split(s) and, on labelled data (split not train),
    `probe_accuracy` of a probe fitted on the train split."""
    model, dm, device = ctx.model, ctx.datamodule, ctx.device
    loaders = ctx.loaders()
    n = sum(len(loader.dataset) for loader in loaders)
    metrics = {"reconstruction_mse": sum(reconstruction_mse(model, loader, device) * len(loader.dataset)
                                         for loader in loaders) / n}
    protocol = {"reconstruction_mse": "mean over the split of ||x - G(E(x))||^2 in data space "
                                      "(images in [0, 1]: per pixel; points: squared distance)"}
    if dm.num_classes is not None and ctx.options.split != "train":
        evaluated = [encode_split(model, loader, device) for loader in loaders]
        test = tuple(np.concatenate(parts) for parts in zip(*evaluated))
        metrics["probe_accuracy"] = linear_probe(encode_split(model, dm.loader("train"), device), test, ctx.seed)
        protocol["probe_accuracy"] = ("logistic regression (standardised features, L2, C = 1) on E(x), fitted on "
                                      "the train split, accuracy on the evaluated split")
    return metrics, protocol
