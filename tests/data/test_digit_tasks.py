"""Built-in image-to-image tasks from real digits (data/translation.py) and data.size for digits/MNIST."""
from __future__ import annotations

import pytest
import torch

from gen_runner.data import translation
from gen_runner.data.datamodule import DigitsDataModule, DigitTasksDataModule, MNISTDataModule, ThickDigitsDataModule
from gen_runner.data.images import fit_size, load_digits
from gen_runner.errors import UserError
from stepping import run_batches, same


def batch(dm, split="train"):
    dm.setup()
    loader = dm.train_dataloader() if split == "train" else dm.loader(split)
    return next(iter(loader))


def test_edges_are_binary_sobel_maps_of_the_target():
    dm = DigitTasksDataModule(task="edges", batch_size=8)
    x, t, y = batch(dm)
    assert x.dtype == t.dtype == torch.uint8 and y.dtype == torch.int64 and x.shape == t.shape == (8, 1, 16, 16)
    assert set(x.unique().tolist()) <= {0, 16} and 0 <= int(y.min()) and int(y.max()) <= 9
    assert torch.equal(x, translation.sobel_edges(t, 17, 0.4))
    step = torch.zeros(1, 1, 5, 7, dtype=torch.uint8)
    step[..., 3:] = 16  # a sharp vertical step: magnitude 1 (after / 4) on both sides of it
    edges = translation.sobel_edges(step, 17, 0.99)
    assert edges[0, 0, 1:4, :6].tolist() == [[0, 0, 16, 16, 0, 0]] * 3
    d = dm.describe()
    assert d["kind"] == "paired" and d["shape"] == d["input_shape"] == [1, 16, 16]
    assert d["num_levels"] == 17 and d["num_classes"] == 10


def test_sr4_input_is_the_bicubic_downsampled_target():
    dm = DigitTasksDataModule(task="sr", size=32, batch_size=8)
    x, t, _ = batch(dm)
    assert x.shape == (8, 1, 8, 8) and t.shape == (8, 1, 32, 32)
    assert torch.equal(x, translation.downsample(t, 4, 17))
    d = dm.describe()
    assert d["input_shape"] == [1, 8, 8] and d["shape"] == [1, 32, 32]
    with pytest.raises(UserError, match="data.size=30 is not divisible by data.factor=4"):
        DigitTasksDataModule(task="sr", size=30)


def test_center_mask_is_the_middle_quarter_and_zeroed_in_the_input():
    dm = DigitTasksDataModule(task="inpaint", batch_size=8)
    x, t, y, m = batch(dm)
    assert m.dtype == torch.float32 and m.shape == (8, 1, 16, 16)
    assert torch.equal(m[0, 0, 4:12, 4:12], torch.ones(8, 8)) and m.sum() == 8 * 64  # H/2 x W/2 in the middle
    assert torch.equal(x, t * (1 - m).to(torch.uint8)) and (t * m.bool()).any()


def test_random_masks_are_seeded_per_example_and_cover_a_quarter():
    m = translation.random_masks(20, 16, 16, seed=3)
    assert torch.equal(m, translation.random_masks(20, 16, 16, seed=3))
    assert not torch.equal(m, translation.random_masks(20, 16, 16, seed=4))
    assert not torch.equal(m[0], m[1]) and ((m.mean((1, 2, 3)) >= 0.25) & (m.mean((1, 2, 3)) < 0.5)).all()
    dm = DigitTasksDataModule(task="inpaint", mask="random", batch_size=8, seed=3)
    x, t, _, mk = batch(dm, "test")
    assert torch.equal(x, t * (1 - mk).to(torch.uint8)) and not torch.equal(mk[0], mk[1])


def test_digits2thick_domains_come_from_disjoint_halves():
    dm = ThickDigitsDataModule(batch_size=8)
    a, b, ya, yb = batch(dm)
    assert a.shape == b.shape == (8, 1, 16, 16) and ya.shape == yb.shape == (8,)
    ia, ib = dm.halves
    assert not set(ia.tolist()) & set(ib.tolist()) and len(ia) + len(ib) == 1797
    x, y = load_digits()
    x = fit_size(x, 16, "resize", 17)
    assert torch.equal(dm.images("train"), translation.thicken_invert(x[ib], 17)[dm._split_indices(len(ib), 2)["train"]])
    assert torch.equal(dm.splits["train"].a[1], y[ia][dm._split_indices(len(ia))["train"]])
    assert dm.describe()["kind"] == "unpaired"


def test_thicken_invert_dilates_then_inverts():
    x = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    x[..., 2, 2] = 16
    out = translation.thicken_invert(x, 17)
    assert (out[0, 0, 1:4, 1:4] == 0).all() and out.sum() == 16 * 16  # a 3x3 black blob on white


def test_unpaired_b_is_drawn_independently_and_resumes():
    dm = ThickDigitsDataModule(batch_size=16, seed=1)
    dm.setup()
    data = dm.splits["train"]
    pairs = [(0, i) for i in range(len(data))]
    _, b0, _, yb0 = data.__getitems__(pairs)
    _, b1, _, _ = data.__getitems__([(1, i) for i in range(len(data))])
    assert not torch.equal(b0, b1) and torch.equal(b0.sort(0).values, b1.sort(0).values)  # a fresh permutation
    straight = run_batches(dm.train_dataloader(), 100)  # past an epoch (44 batches)
    first = dm.train_dataloader()
    run_batches(first, 57)
    again = dm.train_dataloader()
    again.load_state_dict(first.state_dict())
    assert same(straight[57:], run_batches(again, 43))


def test_mnist_source_from_idx_files(mnist_root):
    dm = DigitTasksDataModule(task="edges", source="mnist", root=str(mnist_root), split="test", size=32,
                              fit="pad", batch_size=4)
    x, t, y = batch(dm)
    assert t.shape == (4, 1, 32, 32) and dm.describe()["num_levels"] == 256
    assert (t[..., :2, :] == 0).all()  # the 28x28 digits padded by 2 pixels of background
    with pytest.raises(UserError, match="data.source=mnist needs data.root"):
        DigitTasksDataModule(task="edges", source="mnist", root=None)


def test_data_size_pads_or_resizes_and_keeps_the_default():
    assert DigitsDataModule().describe()["shape"] == [1, 8, 8]
    x = load_digits()[0]
    big = DigitsDataModule(size=32)
    assert big.describe()["shape"] == [1, 32, 32] and big.images("train").max() <= 16
    padded = DigitsDataModule(size=12, fit="pad")
    train = padded.images("train")
    assert (train[..., :2, :] == 0).all() and (train[..., 10:, :] == 0).all()
    assert torch.equal(train, fit_size(x, 12, "pad", 17)[padded._split_indices(1797)["train"]])
    assert torch.equal(fit_size(x[:3], 8, "resize", 17), x[:3])
    with pytest.raises(UserError, match="data.size=6: padding cannot shrink 8x8"):
        DigitsDataModule(size=6, fit="pad")
    with pytest.raises(UserError, match="data.fit='crop': choose pad or resize"):
        MNISTDataModule(root="x", size=32, fit="crop")


@pytest.fixture
def mnist_root(tmp_path):
    """A tiny t10k IDX pair written by the test."""
    import gzip

    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 40, dtype=np.uint8)
    header = lambda code, shape: bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header(8, images.shape) + images.tobytes()))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header(8, labels.shape) + labels.tobytes()))
    return tmp_path
