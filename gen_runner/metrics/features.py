"""Feature extractors for the image metrics, and a cache of real-data features.

Two extractors, chosen by `eval.features=`:
- `classifier`: a `model=classifier` checkpoint of gen-runner's own (`eval.features_ckpt=`),
  offline and CPU-friendly; penultimate features and logits, at the classifier's input size.
- `inception`: the standard FID network (Szegedy et al. 2016 weights as ported by torch-fidelity,
  2048-d pool features, 1008 logits), through the optional `gen-runner[inception]` extra.

Every extractor has a `name`, the `sha256` of its weights, the `image_size` it sees and the
`resize` it applies, which metrics.json records, and maps images in [0, 1] to (features, logits).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.errors import UserError

__all__ = ["ClassifierFeatures", "InceptionFeatures", "make_extractor", "extract", "state_sha256",
           "real_features", "channel_labels"]

INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS}"


def state_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of a state dict's tensors (independent of file format)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class ClassifierFeatures:
    """Features of a gen-runner classifier: images are resized (bilinear) to its input size when
    they differ; the channel count must match."""

    name = "classifier"

    def __init__(self, ckpt_path: str, device: torch.device):
        ckpt = load_checkpoint(ckpt_path)
        family = ckpt["gen_runner"]["family"]
        if family != "classifier":
            raise UserError(f"eval.features_ckpt={ckpt_path} holds a {family}; pass a model=classifier checkpoint "
                            "(e.g. train one with experiment=classifier_digits)")
        self.model = model_from_checkpoint(ckpt).to(device)
        self.sha256 = state_sha256(ckpt["state_dict"])
        self.shape = self.model.data_shape
        self.image_size = list(self.shape[1:])
        self.resize = "bilinear to the classifier's input size, when the sizes differ"
        self.device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] != self.shape[0]:
            raise UserError(f"the feature classifier takes {self.shape[0]}-channel images, these have "
                            f"{images.shape[1]}; train a classifier on this domain for eval.features_ckpt")
        images = images.to(self.device).float()
        if tuple(images.shape[2:]) != tuple(self.shape[1:]):
            images = F.interpolate(images, size=self.shape[1:], mode="bilinear", align_corners=False)
        return self.model.features(images)


class InceptionFeatures:
    """torch-fidelity's FID Inception-v3 ("inception-v3-compat"): uint8 RGB in, 2048 features and
    1008 logits out; it resizes to 299 x 299 (bilinear) itself. Grey images are repeated to RGB."""

    name = "inception-v3-compat"
    image_size = [299, 299]
    resize = "bilinear to 299x299 inside torch-fidelity's InceptionV3"

    def __init__(self, device: torch.device):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as e:
            raise UserError("eval.features=inception needs the optional extra: pip install 'gen-runner[inception]' "
                            "(torch-fidelity); offline, use eval.features=classifier eval.features_ckpt=<classifier "
                            "checkpoint>") from e
        weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"]).to(device).eval()
        except Exception as e:  # offline and not cached: torch.hub's download fails
            raise UserError(f"the FID Inception weights are missing and could not be downloaded: put {INCEPTION_URL} "
                            f"at {weights} ({type(e).__name__})") from e
        self.sha256 = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else "unknown"
        self.device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images.to(self.device).float() * 255).round().clamp(0, 255).to(torch.uint8)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        features, logits = self.net(x)
        return features, logits


def make_extractor(kind: str | None, ckpt_path: str | None, device: torch.device):
    if kind == "classifier":
        if not ckpt_path:
            raise UserError("eval.features=classifier needs eval.features_ckpt=<a model=classifier run>/checkpoints/"
                            "last.ckpt (train one with experiment=classifier_digits or classifier_mnist)")
        return ClassifierFeatures(ckpt_path, device)
    if kind == "inception":
        return InceptionFeatures(device)
    raise UserError(f"eval.features={kind!r}: choose classifier or inception")


def extract(extractor, batches: Iterable[torch.Tensor], total: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, logits) on the CPU of every batch of images in [0, 1], with a progress bar."""
    feats, logits = [], []
    with tqdm(total=total, desc=f"features ({what})", unit="img", leave=False) as bar:
        for images in batches:
            batch_features, batch_logits = extractor(images)
            feats.append(batch_features.float().cpu())
            logits.append(batch_logits.float().cpu())
            bar.update(len(images))
    return torch.cat(feats), torch.cat(logits)


def channel_labels(extractor, images: torch.Tensor) -> torch.Tensor:
    """[N, C] class of every channel of images [N, C, H, W], each classified as a grey image
    (Stacked MNIST: the digit in each of the three channels)."""
    n, c = images.shape[:2]
    grey = images.transpose(0, 1).reshape(n * c, 1, *images.shape[2:])
    return extractor(grey)[1].argmax(1).view(c, n).t().cpu()


def real_features(extractor, images: torch.Tensor, levels: int, key: dict, cache_dir: Path | None,
                  batch_size: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Features of real uint8 images (discrete values 0..levels-1), cached on disk under a hash of
    (extractor sha256, `key`: dataset, split, sample count, image size). Returns (features,
    logits, whether the cache answered)."""
    digest = hashlib.sha256(json.dumps({"extractor": extractor.sha256, **key}, sort_keys=True).encode()).hexdigest()
    path = cache_dir / f"{digest[:24]}.pt" if cache_dir is not None else None
    if path is not None and path.is_file():
        cached = torch.load(path, weights_only=True)
        return cached["features"], cached["logits"], True
    unit = (images[i : i + batch_size].float() / (levels - 1) for i in range(0, len(images), batch_size))
    feats, logits = extract(extractor, unit, len(images), "real")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"features": feats, "logits": logits, "key": {"extractor": extractor.sha256, **key}}, tmp)
        tmp.replace(path)
    return feats, logits, False
