"""`data.labels_per_class=N`: N seeded labels per class kept, the rest hidden (-1), the labelled set
tiled into a second stream; through digits, a tensor_file and an image_folder; who reads what."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.classifier import ClassifierModule
from gen_runner.data.datamodule import DigitsDataModule, ImageFolderDataModule, TensorFileDataModule
from gen_runner.errors import UserError
from gen_runner.tasks.train import train
from helpers import FAST


def check_semi_supervised(dm, full, n: int, num_classes: int) -> None:
    """`dm` (labels_per_class=n) against `full`, the same data and seed with every label."""
    x, y, x_lab, y_lab = dm.splits["train"].tensors
    x_all, y_all = full.splits["train"].tensors
    assert torch.equal(x, x_all)  # the split itself is unchanged
    kept = y >= 0
    assert torch.equal(y[kept], y_all[kept]) and set(y[~kept].tolist()) == {-1}
    assert torch.bincount(y[kept], minlength=num_classes).tolist() == [n] * num_classes
    # the labelled stream: only the kept examples, with their true labels, tiled to the split's length
    assert len(x_lab) == len(y_lab) == len(x)
    flat = x.flatten(1).float()
    index = torch.cdist(x_lab.flatten(1).float(), flat).argmin(1)  # examples may repeat: match the first copy
    assert torch.equal(flat[index], x_lab.flatten(1).float()) and kept[index].all()
    assert torch.equal(y_all[index], y_lab)
    copies = torch.bincount(y_lab, minlength=num_classes)
    assert copies.min() >= n * (len(x) // (n * num_classes))
    for split in ("val", "test"):  # fully labelled, unchanged
        assert all(torch.equal(a, b) for a, b in zip(dm.splits[split].tensors, full.splits[split].tensors))
    batch = next(iter(dm.train_dataloader()))
    assert len(batch) == 4 and len(batch[2]) == len(batch[0]) == dm.batch_size
    assert dm.describe()["labels_per_class"] == n and "labels_per_class" not in full.describe()


def test_digits_keep_n_labels_per_class_seeded():
    dm, full = DigitsDataModule(seed=3, labels_per_class=4), DigitsDataModule(seed=3)
    dm.setup(), full.setup()
    check_semi_supervised(dm, full, 4, 10)
    again, other = DigitsDataModule(seed=3, labels_per_class=4), DigitsDataModule(seed=4, labels_per_class=4)
    again.setup(), other.setup()
    assert all(torch.equal(a, b) for a, b in zip(dm.splits["train"].tensors, again.splits["train"].tensors))
    assert not torch.equal(dm.splits["train"].tensors[1] >= 0, other.splits["train"].tensors[1] >= 0)
    one = DigitsDataModule(seed=3, labels_per_class=1)  # ten labelled examples, one per class
    one.setup()
    y_lab = one.splits["train"].tensors[3]
    for block in y_lab[: len(y_lab) // 10 * 10].view(-1, 10):  # the tiling: a permutation of them after another
        assert sorted(block.tolist()) == list(range(10))
    assert not torch.equal(y_lab[:10], y_lab[10:20])


def test_tensor_file_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "points.npz", x=rng.normal(size=(90, 2)).astype(np.float32), y=np.arange(90) % 3)
    kw = dict(path=str(tmp_path / "points.npz"), batch_size=8, seed=1)
    dm, full = TensorFileDataModule(**kw, labels_per_class=2), TensorFileDataModule(**kw)
    dm.setup(), full.setup()
    check_semi_supervised(dm, full, 2, 3)


def test_image_folder_with_class_subfolders(tmp_path):
    for c, label in enumerate(("cats", "dogs")):
        (tmp_path / label).mkdir()
        for i in range(12):
            Image.new("RGB", (10, 10), (i * 20, c * 100, 7 * i)).save(tmp_path / label / f"{i}.png")
    kw = dict(path=str(tmp_path), size=4, channels=3, batch_size=4, num_workers=0, val_fraction=0.1,
              test_fraction=0.1)
    dm, full = ImageFolderDataModule(**kw, labels_per_class=3), ImageFolderDataModule(**kw)
    dm.setup(), full.setup()
    check_semi_supervised(dm, full, 3, 2)
    with pytest.raises(UserError, match=r"labels_per_class=11: class \d has only \d+ training examples"):
        ImageFolderDataModule(**kw, labels_per_class=11).setup()


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "10"])
def test_bad_values_are_one_line_errors(bad):
    with pytest.raises(UserError, match="data.labels_per_class=.*at least 1"):
        DigitsDataModule(labels_per_class=bad)


def test_unlabelled_data_is_refused(tmp_path):
    np.save(tmp_path / "points.npy", np.zeros((50, 2), dtype=np.float32))
    with pytest.raises(UserError, match="labels_per_class=5: TensorFileDataModule has no labels"):
        TensorFileDataModule(str(tmp_path / "points.npy"), batch_size=8, labels_per_class=5).setup()


@pytest.mark.parametrize("data", ["digits", "mnist", "fashion_mnist", "tensor_file", "image_folder", "stacked_mnist"])
def test_settable_from_the_command_line(make_config, data):
    needs = {"tensor_file": ["data.path=x.npz"], "image_folder": ["data.path=imgs"]}.get(data, [])
    cfg = make_config("train", f"data={data}", *needs, "data.labels_per_class=10")
    assert cfg.data.labels_per_class == 10


class Spy(torch.nn.Module):
    def __init__(self, data_shape, num_classes):
        super().__init__()
        self.linear, self.seen = torch.nn.Linear(2, num_classes), []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.linear(x)


@pytest.mark.filterwarnings("ignore:.*self.trainer.*reference is not registered")
def test_the_classifier_trains_on_the_labelled_stream_alone():
    model = ClassifierModule(Spy, {"shape": [2], "num_classes": 3, "labels_per_class": 1})
    x, x_lab = torch.randn(4, 2), torch.randn(4, 2)
    model.training_step((x, torch.tensor([-1, 2, -1, -1]), x_lab, torch.tensor([0, 2, 1, 0])), 0)
    assert len(model.net.seen) == 1 and torch.equal(model.net.seen[0], x_lab)


SMALL_GAN = ["data=digits", "data.labels_per_class=3", "data.batch_size=32", "trainer.max_steps=2",
             "model.latent_dim=4", "model.generator.conv.base_channels=4", "model.discriminator.conv.base_channels=4",
             *FAST]


@pytest.mark.parametrize("model", ["gan", "dcgan", "infogan"])
def test_unsupervised_gans_read_x_alone(make_config, model):
    metrics = train(make_config("train", f"model={model}", *SMALL_GAN))
    assert "train/d_loss" in metrics


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_conditional_gans_refuse_hidden_labels(make_config, model):
    with pytest.raises(UserError, match=r"need every training label, but data.labels_per_class=3 hides most"):
        train(make_config("train", f"model={model}", *SMALL_GAN))
