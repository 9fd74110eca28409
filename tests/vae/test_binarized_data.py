"""Binarised data (gen_runner/data/binarized.py, BinarizedDataModule): seeded dynamic binarisation,
fresh per epoch and exact across a resume; the statically binarised MNIST's .amat reader and its
download with checksums, on files this test writes (never the network)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from gen_runner.data.binarized import (BinarizedData, binarize, download_static_mnist, hash_uniform, load_static_mnist,
                                       read_amat)
from gen_runner.data.datamodule import BinarizedDataModule
from gen_runner.data.loader import ResumableLoader
from gen_runner.errors import UserError


def test_the_hashed_uniforms_are_uniform_seeded_and_differ_by_every_key_part():
    index = torch.arange(2000)
    u = hash_uniform((0, 1), torch.zeros(2000), index, 64)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.002 and abs(u.var() - 1 / 12) < 0.001
    assert torch.equal(u, hash_uniform((0, 1), torch.zeros(2000), index, 64))
    for other in [hash_uniform((1, 1), torch.zeros(2000), index, 64), hash_uniform((0, 2), torch.zeros(2000), index, 64),
                  hash_uniform((0, 1), torch.ones(2000), index, 64), hash_uniform((0, 1), torch.zeros(2000), index + 1, 64)]:
        assert (other != u).float().mean() > 0.99
        assert abs(torch.corrcoef(torch.stack([u.flatten(), other.flatten()]))[0, 1]) < 0.01


def test_binarize_draws_each_pixel_with_its_grey_probability():
    grey = torch.tensor([0, 4, 8, 12, 16], dtype=torch.uint8).repeat(4000, 1)[:, None, None, :]  # 17 levels
    x = binarize(grey, 17, (3, 0), torch.zeros(4000), torch.arange(4000))
    assert x.dtype == torch.uint8 and set(x.unique().tolist()) == {0, 1}
    assert torch.allclose(x.float().mean((0, 1, 2)), torch.tensor([0, 0.25, 0.5, 0.75, 1]), atol=0.02)


def dynamic(n: int = 12) -> BinarizedData:
    grey = torch.randint(0, 256, (n, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return BinarizedData(grey, torch.arange(n), 256, (7, 0), dynamic=True)


def consume(loader, steps: int) -> list[tuple]:
    """The next `steps` batches, the position advanced as the training loop advances it."""
    seen = []
    while len(seen) < steps:
        start = loader.consumed if loader.consumed < len(loader) else 0
        for i, batch in enumerate(loader, start=start):
            seen.append(batch)
            loader.consumed = i + 1
            if len(seen) == steps:
                break
    return seen


def test_dynamic_binarisation_is_fresh_each_epoch_and_independent_of_the_batch_size():
    data = dynamic()
    by_epoch = [dict(zip(y.tolist(), x)) for x, y in
                (map(torch.cat, zip(*consume(ResumableLoader(data, 4, seed=1), 3 * (e + 1))[3 * e:])) for e in range(3))]
    assert all(torch.equal(by_epoch[0][i], data.tensors[0][i]) for i in range(12))  # epoch 0: the stored draw
    changed = sum(not torch.equal(by_epoch[1][i], by_epoch[0][i]) for i in range(12))
    assert changed >= 10 and sum(not torch.equal(by_epoch[2][i], by_epoch[1][i]) for i in range(12)) >= 10
    x, y = data.__getitems__([(1, i) for i in (5, 2)])
    assert torch.equal(x[0], by_epoch[1][5]) and torch.equal(x[1], by_epoch[1][2]) and y.tolist() == [5, 2]


def test_a_resumed_loader_sees_the_draws_of_an_uninterrupted_one():
    whole = consume(ResumableLoader(dynamic(), 5, seed=2), 9)  # 2 batches per epoch: epochs 0 to 4
    first = ResumableLoader(dynamic(), 5, seed=2)
    part = consume(first, 5)
    resumed = ResumableLoader(dynamic(), 5, seed=2)
    resumed.load_state_dict(first.state_dict())
    rest = part + consume(resumed, 4)
    assert all(torch.equal(a, b) for u, v in zip(whole, rest) for a, b in zip(u, v))


def test_the_datamodule_binarises_digits_dynamically_for_training_and_once_for_val_and_test():
    dm = BinarizedDataModule(source="digits", batch_size=50, seed=0)
    dm.setup()
    info = dm.describe()
    assert info["num_levels"] == 2 and info["shape"] == [1, 8, 8] and info["num_classes"] == 10
    assert {k: len(d) for k, d in dm.splits.items()} == {"val": 180, "test": 180, "train": 1437}
    assert all(set(d.tensors[0].unique().tolist()) == {0, 1} for d in dm.splits.values())
    assert dm.splits["train"].dynamic and not dm.splits["test"].dynamic
    test = dm.splits["test"]
    assert torch.equal(test.__getitems__([(5, 0)])[0], test.tensors[0][:1])  # val/test: the same draw every epoch
    again = BinarizedDataModule(source="digits", batch_size=50, seed=0)
    again.setup()
    assert torch.equal(again.splits["test"].tensors[0], test.tensors[0])
    no_val = BinarizedDataModule(source="digits", batch_size=50, val_fraction=0)
    no_val.setup()
    assert len(no_val.splits["val"]) == 0 and len(no_val.splits["test"]) == 180
    with pytest.raises(UserError, match="data.binarization=static is the binarised MNIST"):
        BinarizedDataModule(source="digits", binarization="static")
    with pytest.raises(UserError, match="choose source digits or mnist"):
        BinarizedDataModule(source="cifar")


def write_amat(path, images: np.ndarray) -> bytes:
    text = "".join(" ".join(str(v) for v in row) + " \n" for row in images.reshape(len(images), -1))
    path.write_text(text)
    return text.encode()


def test_the_amat_reader_reads_lines_of_784_values_and_refuses_others(tmp_path):
    images = np.random.default_rng(0).integers(0, 2, (3, 28, 28))
    write_amat(tmp_path / "ok.amat", images)
    assert torch.equal(read_amat(tmp_path / "ok.amat"), torch.from_numpy(images[:, None].astype(np.uint8)))
    (tmp_path / "short.amat").write_text("0 1 " * 392 + "\n" + "1 " * 783 + "\n")
    (tmp_path / "grey.amat").write_text("0 2 " * 392 + "\n")
    for name in ("short.amat", "grey.amat"):
        with pytest.raises(ValueError, match="not an .amat file"):
            read_amat(tmp_path / name)


def test_static_mnist_downloads_with_checksums_and_loads_its_three_splits(tmp_path):
    served, resources = tmp_path / "server", {"url": "", "files": {}}
    served.mkdir()
    sizes = {"train": 4, "valid": 2, "test": 3}
    for name, n in sizes.items():
        raw = write_amat(served / f"binarized_mnist_{name}.amat", np.random.default_rng(n).integers(0, 2, (n, 784)))
        resources["files"][name] = (len(raw), hashlib.sha256(raw).hexdigest())
    resources["url"] = "file://" + str(served / "binarized_mnist_{}.amat")
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="pass data.download=true"):
        load_static_mnist(root, resources=resources)
    splits = load_static_mnist(root, download=True, resources=resources)
    assert {k: tuple(v.shape) for k, v in splits.items()} == {"train": (4, 1, 28, 28), "val": (2, 1, 28, 28),
                                                               "test": (3, 1, 28, 28)}
    dm = BinarizedDataModule(source="mnist", binarization="static", root=str(root), batch_size=2)
    dm.setup()
    assert dm.describe()["num_levels"] == 2 and dm.num_classes is None and len(dm.splits["val"]) == 2

    bad = dict(resources, files=dict(resources["files"], test=(resources["files"]["test"][0], "0" * 64)))
    with pytest.raises(ValueError, match="expected .* bytes with sha256 0000"):
        download_static_mnist(tmp_path / "other", "test", bad)
    assert not list((tmp_path / "other").iterdir())  # nothing left behind
