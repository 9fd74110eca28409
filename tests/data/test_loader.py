"""The resumable, rank-sharded loader and the data modules' splits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_runner.data.datamodule import (
    DigitsDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    TensorFileDataModule,
    ToyDataModule,
)
from gen_runner.data.loader import EpochSampler, ResumableLoader, TensorData
from gen_runner.data.toy import Ring
from gen_runner.errors import UserError




def run_steps(loader, steps):
    """Consume `steps` batches the way the training loop does, across epochs."""
    seen = []
    while len(seen) < steps:
        start = loader.consumed if loader.consumed < len(loader) else 0
        for i, (x,) in enumerate(loader, start=start):
            seen.append(x)
            loader.consumed = i + 1
            if len(seen) == steps:
                break
    return seen


def test_tensor_data_fetches_whole_batches():
    data = TensorData(torch.arange(10), torch.arange(10) * 2)
    x, y = data.__getitems__([3, 1])
    assert x.tolist() == [3, 1] and y.tolist() == [6, 2]
    loader = ResumableLoader(data, batch_size=4, seed=0)
    x, y = next(iter(loader))
    assert x.shape == (4,) and torch.equal(y, 2 * x)


def test_epoch_order_is_seeded_and_differs_between_epochs():
    s = EpochSampler(20, seed=1)
    first = list(s)
    assert list(EpochSampler(20, seed=1)) == first and sorted(first) == list(range(20))
    s.epoch = 1
    assert list(s) != first


def test_ranks_get_disjoint_equal_shares():
    shares = [list(EpochSampler(21, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 10 and not set(shares[0]) & set(shares[1])


def test_resume_from_state_dict_continues_the_same_sequence():
    data = TensorData(torch.arange(50))
    straight = run_steps(ResumableLoader(data, 10, seed=3), 12)  # 5 batches an epoch: crosses 2 epochs
    first = ResumableLoader(data, 10, seed=3)
    head = run_steps(first, 7)
    second = ResumableLoader(data, 10, seed=3)
    second.load_state_dict(first.state_dict())
    assert first.state_dict() == {"epoch": 1, "batches": 2}
    tail = run_steps(second, 5)
    assert all(torch.equal(a, b) for a, b in zip(straight, head + tail))


def test_a_new_iterator_continues_where_the_loop_stopped():
    """Lightning may call iter() again before any batch is consumed: nothing is skipped twice."""
    loader = ResumableLoader(TensorData(torch.arange(30)), 10, seed=0)
    loader.load_state_dict({"epoch": 0, "batches": 3})  # a finished epoch: the next one starts
    a, b = next(iter(loader))[0], next(iter(loader))[0]
    assert torch.equal(a, b) and loader.epoch == 1


def test_toy_splits_are_seeded_and_distinct():
    dm = ToyDataModule(Ring(), num_train=300, num_val=50, num_test=50, batch_size=10, seed=4)
    dm.setup()
    again = ToyDataModule(Ring(), num_train=300, num_val=50, num_test=50, batch_size=10, seed=4)
    again.setup()
    assert torch.equal(dm.splits["train"].tensors[0], again.splits["train"].tensors[0])
    assert not torch.equal(dm.splits["val"].tensors[0][:50], dm.splits["train"].tensors[0][:50])
    assert dm.describe() == {"shape": [2], "kind": "points", "num_levels": None, "num_classes": None,
                             "batch_size": 10}


def test_digits_split_and_description():
    dm = DigitsDataModule(seed=0)
    dm.setup()
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"val": 180, "test": 180, "train": 1437}
    assert dm.describe() == {"shape": [1, 8, 8], "kind": "images", "num_levels": 17, "num_classes": 10,
                             "batch_size": 64}
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.max() <= 16 and y.shape == (64,)


def test_tensor_file_float_images_are_quantized(tmp_path):
    np.save(tmp_path / "x.npy", np.linspace(0, 1, 100 * 4 * 4, dtype=np.float32).reshape(100, 1, 4, 4))
    dm = TensorFileDataModule(str(tmp_path / "x.npy"), num_levels=256, batch_size=10)
    dm.setup()
    x = dm.splits["train"].tensors[0]
    assert x.dtype == torch.uint8 and dm.num_levels == 256 and x.max() <= 255


def test_tensor_file_out_of_range_floats_and_tiny_sets_fail_clearly(tmp_path):
    np.save(tmp_path / "x.npy", np.full((20, 1, 4, 4), 3.0, dtype=np.float32))
    with pytest.raises(UserError, match=r"must lie in \[0, 1\]"):
        TensorFileDataModule(str(tmp_path / "x.npy")).setup()
    np.save(tmp_path / "few.npy", np.zeros((20, 2), dtype=np.float32))
    with pytest.raises(UserError, match="fewer than one batch"):
        TensorFileDataModule(str(tmp_path / "few.npy"), batch_size=64).setup()


def _write_idx(path, array: np.ndarray) -> None:
    """An IDX file (unsigned bytes), gzip-compressed, as LeCun's MNIST files are."""
    import gzip
    import struct

    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("split, prefix", [("train", "train"), ("test", "t10k")])
def test_mnist_module_reads_either_file_set(tmp_path, split, prefix):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (100, 28, 28)))
    _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(100) % 10)
    dm = MNISTDataModule(str(tmp_path), split=split, batch_size=10, seed=0)
    dm.setup()
    assert dm.describe() == {"shape": [1, 28, 28], "kind": "images", "num_levels": 256, "num_classes": 10,
                             "batch_size": 10}
    assert sum(len(d) for d in dm.splits.values()) == 100


def test_image_folder_module(tmp_path):
    from PIL import Image

    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(10):
            Image.new("RGB", (20, 14), (i * 20, 0, 0)).save(tmp_path / label / f"{i}.png")
    dm = ImageFolderDataModule(str(tmp_path), size=8, channels=3, batch_size=4, num_workers=0)
    dm.setup()
    assert dm.describe() == {"shape": [3, 8, 8], "kind": "images", "num_levels": 256, "num_classes": 2,
                             "batch_size": 4}
