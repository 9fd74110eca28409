"""CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images"): the official
python-pickle archive, downloaded (md5 checked) and read in place.

The archive `cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with `data_batch_1` ..
`data_batch_5` (the 50,000 training images) and `test_batch` (10,000), each a pickled dict whose
`data` is uint8 [10000, 3072] (1,024 red, then green, then blue values of a 32x32 image, row by
row) and `labels` a list of class indices (CLASSES). The pickles are read with an unpickler that
accepts only numpy arrays, so even a tampered file cannot run code.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gen_runner.data.images import download_file

__all__ = ["URL", "MD5", "ARCHIVE", "FOLDER", "CLASSES", "fetch", "load_cifar10"]

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE, FOLDER = "cifar-10-python.tar.gz", "cifar-10-batches-py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays, nothing that could run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}  # encode: bytes in protocol 2

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR-10 batch")
        return super().find_class(module, name)


def fetch(root: str | os.PathLike) -> Path:
    """The archive in `root`, downloaded from URL (md5 checked) if it is not there yet."""
    dest = Path(root) / ARCHIVE
    if not dest.is_file():
        download_file(URL, dest, MD5)
    return dest


def _batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
        data, labels = d.get(b"data", d.get("data")), d.get(b"labels", d.get("labels"))
        data, labels = np.asarray(data, dtype=np.uint8), np.asarray(labels, dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{name}: not a CIFAR-10 batch ({e})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise ValueError(f"{name}: expected data N x 3072 and N labels, got {data.shape} and {labels.shape}")
    return data, labels


def load_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[Tensor, Tensor]:
    """The `split` file set (train: 50,000, test: 10,000) as uint8 [N, 3, 32, 32] and int64 labels,
    from `root`/cifar-10-batches-py/ if extracted, else straight from `root`/cifar-10-python.tar.gz."""
    root, names = Path(root), BATCHES[split]
    if (root / FOLDER).is_dir():
        parts = [_batch((root / FOLDER / n).read_bytes(), str(root / FOLDER / n)) for n in names]
    elif (root / ARCHIVE).is_file():
        try:
            with tarfile.open(root / ARCHIVE, "r:gz") as tar:
                parts = [_batch(tar.extractfile(f"{FOLDER}/{n}").read(), f"{ARCHIVE}:{FOLDER}/{n}") for n in names]
        except (tarfile.TarError, KeyError, OSError, EOFError) as e:
            raise ValueError(f"{root / ARCHIVE}: cannot read ({e}); delete it and download it again") from None
    else:
        raise FileNotFoundError(f"CIFAR-10 not found: put {ARCHIVE} in {root.resolve()} (or pass data.download=true)")
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    return torch.from_numpy(data), torch.from_numpy(np.concatenate([y for _, y in parts]))
