"""Binary images for Bernoulli models (VAEs): MNIST-style grey images binarised by a seeded Bernoulli
draw, and the standard statically binarised MNIST.

- Dynamic binarisation: pixel p of example i at epoch e is 1 with probability its grey value
  v / (K - 1), decided by a uniform number hashed from (seed, stream, e, i, p) (a counter-based
  generator: Wellons' "lowbias32" integer hash, computed in int64 without overflow). A fresh draw
  per epoch, as the VAE papers train (e.g. Burda et al. 2016); independent of batch size, shuffling,
  workers and devices, so a resumed run sees exactly the draws of an uninterrupted one.
  `BinarizedData` is a `tagged` dataset (gen_runner/data/loader.py): the resumable loader's sampler
  sends it (epoch, index) pairs, in the main process or any worker.
- Static binarisation: the fixed binarisation of Salakhutdinov & Murray 2008 ("On the Quantitative
  Analysis of Deep Belief Networks") as distributed by Larochelle & Murray 2011 ("The Neural
  Autoregressive Distribution Estimator"): `binarized_mnist_{train,valid,test}.amat`, 50,000 /
  10,000 / 10,000 lines of 784 space-separated 0/1 values, no labels. The sha256 checksums and sizes
  are those of TensorFlow Datasets' url_checksums/binarized_mnist.txt.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from gen_runner.data.images import download_file
from gen_runner.data.loader import TensorData

__all__ = ["STATIC_MNIST", "hash_uniform", "binarize", "BinarizedData", "read_amat",
           "download_static_mnist", "load_static_mnist"]

STATIC_MNIST = {
    "url": "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{}.amat",
    # file split -> (size in bytes, sha256)
    "files": {
        "train": (78_400_000, "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
        "valid": (15_680_000, "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
        "test": (15_680_000, "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
    },
}

_MASK = 0xFFFFFFFF


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h * c) mod 2^32 for h < 2^32 in int64, by 16-bit halves of c, so no product overflows."""
    return (h * (c & 0xFFFF) + (((h * (c >> 16)) & 0xFFFF) << 16)) & _MASK


def _hash(h: torch.Tensor) -> torch.Tensor:
    """Wellons' lowbias32 hash of 32-bit values held in int64."""
    h = h & _MASK
    h = _mul32(h ^ (h >> 16), 0x7FEB352D)
    h = _mul32(h ^ (h >> 15), 0x846CA68B)
    return h ^ (h >> 16)


def hash_uniform(key: tuple[int, ...], epoch: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Uniform numbers in [0, 1) [N, size]: row n a function of (key, epoch[n], index[n], position) alone."""
    h = torch.zeros((), dtype=torch.int64)
    for part in key:
        h = _hash(h ^ (part & _MASK))
    h = _hash(h ^ epoch.long()[:, None])
    h = _hash(h ^ index.long()[:, None])
    h = _hash(h ^ torch.arange(size, dtype=torch.int64)[None, :])
    return (h >> 8).float() / 2 ** 24


def binarize(x: torch.Tensor, levels: int, key: tuple[int, ...], epoch: torch.Tensor,
             index: torch.Tensor) -> torch.Tensor:
    """uint8 {0, 1} images: a pixel of grey value v in example index[n] at epoch[n] is 1 with
    probability v / (levels - 1)."""
    u = hash_uniform(key, epoch, index, x.shape[1:].numel()).view(x.shape)
    return (u < x.float() / (levels - 1)).to(torch.uint8)


class BinarizedData(TensorData):
    """Grey images x (and labels y) binarised with the key (seed, stream): `tensors` hold the epoch-0
    draw; a `dynamic` set draws afresh for the epoch of each `(epoch, index)` the sampler sends (a
    `tagged` dataset, gen_runner/data/loader.py) in a shuffled (training) pass, a static one (and an
    ordered pass: evaluation) always reads the epoch-0 draw."""

    tagged = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, levels: int, key: tuple[int, ...],
                 dynamic: bool = True):
        self.grey, self.levels, self.key, self.dynamic = x, levels, key, dynamic
        first = binarize(x, levels, key, torch.zeros(len(x)), torch.arange(len(x)))
        super().__init__(*(t for t in (first, y) if t is not None))

    def __getitems__(self, items: list) -> tuple[torch.Tensor, ...]:
        """`(epoch, index)` pairs (epoch None in an ordered pass, which is evaluation) or bare indices:
        those two read the epoch-0 draw."""
        index = torch.tensor([i if isinstance(i, int) else i[1] for i in items])
        epoch = torch.tensor([0 if isinstance(i, int) or i[0] is None else i[0] for i in items])
        if not self.dynamic or not epoch.any():
            return super().__getitems__(index.tolist())
        x = binarize(self.grey[index], self.levels, self.key, epoch, index)
        return (x, *(t[index] for t in self.tensors[1:]))


# -- the statically binarised MNIST ----------------------------------------------------------------------
def read_amat(path: str | os.PathLike, side: int = 28) -> torch.Tensor:
    """An .amat file of lines of side^2 space-separated 0/1 values -> uint8 [N, 1, side, side]."""
    raw = np.frombuffer(Path(path).read_bytes(), np.uint8)
    is_value = (raw == ord("0")) | (raw == ord("1"))
    starts = np.concatenate([[0], np.flatnonzero(raw == ord("\n")) + 1])
    counts = np.add.reduceat(is_value, starts[starts < len(raw)], dtype=np.int64) if len(raw) else np.zeros(0)
    counts = counts[counts > 0]  # blank lines
    if not len(counts) or (counts != side * side).any() or not np.isin(raw, np.frombuffer(b"01 \n\r", np.uint8)).all():
        raise ValueError(f"{path}: not an .amat file of lines of {side * side} space-separated 0/1 values")
    return torch.from_numpy((raw[is_value] - ord("0")).reshape(len(counts), 1, side, side))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_static_mnist(root: str | os.PathLike, split: str, resources: dict = STATIC_MNIST) -> Path:
    """Fetch binarized_mnist_<split>.amat into root, checking its size and sha256 before it takes the name."""
    size, sha256 = resources["files"][split]
    dest = Path(root) / f"binarized_mnist_{split}.amat"
    part = dest.with_name(dest.name + ".download")
    try:
        download_file(resources["url"].format(split), part)
        got = (part.stat().st_size, _sha256(part))
        if got != (size, sha256):
            raise ValueError(f"{dest.name}: got {got[0]} bytes with sha256 {got[1]}, expected {size} bytes with "
                             f"sha256 {sha256}")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def load_static_mnist(root: str | os.PathLike, download: bool = False,
                      resources: dict = STATIC_MNIST) -> dict[str, torch.Tensor]:
    """{"train", "val", "test"}: uint8 [N, 1, 28, 28] from binarized_mnist_{train,valid,test}.amat in
    root, fetched first where missing if `download`."""
    root, out = Path(root), {}
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        path = root / f"binarized_mnist_{name}.amat"
        if not path.is_file():
            if not download:
                raise FileNotFoundError(f"{path.name} not found in {root.resolve()}: put Larochelle's "
                                        "binarized_mnist_{train,valid,test}.amat there or pass data.download=true")
            download_static_mnist(root, name, resources)
        out[split] = read_amat(path)
    return out
