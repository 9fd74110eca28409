"""pix2pix's and CycleGAN's folder layouts on files the test writes: side-by-side pairs, A/ and B/
folders, trainA/ trainB/; one crop and flip for both halves of a pair; seeded, resumable draws."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.data.datamodule import PairedFolderDataModule, UnpairedFolderDataModule
from gen_runner.errors import UserError
from stepping import run_batches, same

SMALL = dict(load_size=12, crop_size=8, batch_size=4)


def noise_image(rng, w=10, h=10, shade=0):
    """A random RGB image (every crop position and flip looks different), brightened by `shade`."""
    return np.clip(rng.integers(0, 200, (h, w, 3)) + shade, 0, 255).astype(np.uint8)


def side_by_side(folder, n, rng, b_shade=0):
    folder.mkdir(parents=True)
    for i in range(n):
        a = noise_image(rng)
        Image.fromarray(np.concatenate([a, np.clip(a.astype(int) + b_shade, 0, 255).astype(np.uint8)], 1)).save(
            folder / f"{i}.png")


def test_side_by_side_pairs_get_one_crop_and_flip(tmp_path):
    rng = np.random.default_rng(0)
    side_by_side(tmp_path / "train", 12, rng)
    side_by_side(tmp_path / "test", 4, rng)
    dm = PairedFolderDataModule(str(tmp_path), **SMALL)
    batches = run_batches(dm.train_dataloader(), 6)  # two epochs
    for x, t, y in batches:
        assert x.shape == t.shape == (4, 3, 8, 8) and x.dtype == torch.uint8 and (y == -1).all()
        assert torch.equal(x, t)  # identical halves stay identical: the same crop and flip
    plain = dm.loader("train")
    first = torch.cat([x for x, _, _ in plain])
    drawn = torch.cat([x for x, *_ in batches[:3]])
    assert not torch.equal(drawn.sort(0).values, first.sort(0).values)  # random crops/flips, not the centre crop
    assert len(dm.splits["val"]) == len(dm.splits["test"]) == 4  # no val/: the test files serve both
    d = dm.describe()
    assert d["kind"] == "paired" and d["shape"] == d["input_shape"] == [3, 8, 8] and d["num_levels"] == 256
    assert d["num_classes"] is None


def test_direction_picks_the_input_half(tmp_path):
    side_by_side(tmp_path / "pairs", 10, np.random.default_rng(1), b_shade=55)
    a_to_b = PairedFolderDataModule(str(tmp_path / "pairs"), **SMALL, val_fraction=0.2, test_fraction=0.2)
    b_to_a = PairedFolderDataModule(str(tmp_path / "pairs"), direction="BtoA", **SMALL, val_fraction=0.2,
                                    test_fraction=0.2)
    x, t, _ = next(iter(a_to_b.loader("test")))
    x2, t2, _ = next(iter(b_to_a.loader("test")))
    assert torch.equal(x, t2) and torch.equal(t, x2) and t.float().mean() > x.float().mean() + 30
    assert torch.equal(a_to_b.images("test"), t)  # evaluation compares against the targets
    assert len(a_to_b.splits["train"]) == 6


def test_a_and_b_folders_pair_by_file_name(tmp_path):
    rng = np.random.default_rng(2)
    for split, n in (("train", 8), ("val", 2)):
        for side in "AB":
            (tmp_path / split / side).mkdir(parents=True)
        for i in range(n):
            a = noise_image(rng)
            Image.fromarray(a).save(tmp_path / split / "A" / f"{i}.png")
            Image.fromarray(a).save(tmp_path / split / "B" / f"{i}.png")
    dm = PairedFolderDataModule(str(tmp_path), **SMALL)
    for x, t, _ in run_batches(dm.train_dataloader(), 4):
        assert torch.equal(x, t)
    assert len(dm.splits["test"]) == 2
    (tmp_path / "train" / "B" / "3.png").unlink()
    with pytest.raises(UserError, match="3.png has no partner"):
        PairedFolderDataModule(str(tmp_path), **SMALL).setup()


def test_cyclegan_layout_unpaired_and_resumable(tmp_path):
    rng = np.random.default_rng(3)
    for name, n, shade in (("trainA", 10, 0), ("trainB", 7, 55), ("testA", 3, 0), ("testB", 2, 55)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(noise_image(rng, 14, 10, shade)).save(tmp_path / name / f"{i}.jpg")
    dm = UnpairedFolderDataModule(str(tmp_path), **SMALL, num_workers=0)
    a, b, ya, yb = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (4, 3, 8, 8) and (ya == -1).all() and (yb == -1).all()
    assert len(dm.splits["train"]) == 10 and len(dm.splits["val"]) == len(dm.splits["test"]) == 3
    assert dm.images("test").shape == (2, 3, 8, 8)  # domain B
    assert dm.describe()["kind"] == "unpaired" and dm.describe()["input_shape"] == [3, 8, 8]
    straight = run_batches(dm.train_dataloader(), 7)
    first = dm.train_dataloader()
    run_batches(first, 3)
    again = UnpairedFolderDataModule(str(tmp_path), **SMALL).train_dataloader()
    again.load_state_dict(first.state_dict())
    assert same(straight[3:], run_batches(again, 4))
    with pytest.raises(UserError, match="needs trainA/ and trainB/"):
        UnpairedFolderDataModule(str(tmp_path / "trainA")).setup()


def test_bad_crop_and_direction(tmp_path):
    with pytest.raises(UserError, match="data.crop_size=300 is larger than data.load_size=286"):
        PairedFolderDataModule(str(tmp_path), crop_size=300)
    with pytest.raises(UserError, match="data.direction='AB': choose AtoB or BtoA"):
        PairedFolderDataModule(str(tmp_path), direction="AB")
