"""data=cifar10 on an archive the test writes in the official layout, "downloaded" through the real
download code from a file:// URL, md5 checked against the test's own file: never the network."""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from gen_runner.data import cifar
from gen_runner.data.datamodule import CIFAR10DataModule
from gen_runner.errors import UserError


def write_archive(path, per_batch=4, seed=0):
    """cifar-10-python.tar.gz as distributed: five data batches, a test batch and batches.meta, each
    a protocol-2 pickle of a dict with bytes keys (Python 2's str), data uint8 N x 3072 (R, G, B planes)."""
    rng = np.random.default_rng(seed)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [*cifar.BATCHES["train"], "test_batch", "batches.meta"]:
            if name == "batches.meta":
                obj = {b"label_names": [c.encode() for c in cifar.CLASSES], b"num_vis": 3072}
            else:
                data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
                labels = rng.integers(0, 10, per_batch).tolist()
                batches[name] = (data, labels)
                obj = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                       b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
            # As the 2009 archive names numpy's reconstructor (numpy 2 writes numpy._core).
            raw = pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The archive behind a file:// URL, its md5 the expected one; returns the written batches."""
    source = tmp_path / "server" / cifar.ARCHIVE
    source.parent.mkdir()
    batches = write_archive(source)
    monkeypatch.setattr(cifar, "URL", source.as_uri())
    monkeypatch.setattr(cifar, "MD5", hashlib.md5(source.read_bytes()).hexdigest())
    return batches


def test_official_url_and_md5():
    assert cifar.URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert cifar.MD5 == "c58f30108f718f92721af3b95e74349a"


def test_download_then_read_the_pickles(tmp_path, served):
    dm = CIFAR10DataModule(str(tmp_path / "data"), download=True, batch_size=4)
    dm.prepare_data()
    assert (tmp_path / "data" / cifar.ARCHIVE).is_file()
    x, y = cifar.load_cifar10(tmp_path / "data", "train")
    data, labels = served["data_batch_2"]
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x[4, 0], torch.from_numpy(data[0, :1024].reshape(32, 32)))  # red plane, row by row
    assert torch.equal(x[4, 2], torch.from_numpy(data[0, 2048:].reshape(32, 32)))
    assert y[4:8].tolist() == labels
    test_x, _ = cifar.load_cifar10(tmp_path / "data", "test")
    assert torch.equal(test_x.flatten(1), torch.from_numpy(served["test_batch"][0]))
    d = dm.describe()
    assert d["shape"] == [3, 32, 32] and d["num_levels"] == 256 and d["kind"] == "images"


def test_md5_mismatch_is_refused_and_leaves_nothing(tmp_path, served, monkeypatch):
    monkeypatch.setattr(cifar, "MD5", "0" * 32)
    dm = CIFAR10DataModule(str(tmp_path / "data"), download=True, batch_size=4)
    with pytest.raises(UserError, match="md5 mismatch"):
        dm.prepare_data()
    assert not any((tmp_path / "data").iterdir())


def test_missing_archive_and_code_in_a_pickle(tmp_path):
    with pytest.raises(UserError, match="put cifar-10-python.tar.gz in"):
        CIFAR10DataModule(str(tmp_path), batch_size=4).setup()
    folder = tmp_path / cifar.FOLDER
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    for name in cifar.BATCHES["test"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(ValueError, match="refusing builtins.print"):
        cifar.load_cifar10(tmp_path, "test")
