"""data=image_folder streamed from disk: the same batches as in memory (seeded flips included),
with or without workers, and an exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.data.datamodule import ImageFolderDataModule
from gen_runner.errors import UserError
from stepping import run_batches, same


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir()
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return str(root)


def make(folder, **kw):
    return ImageFolderDataModule(folder, size=8, flip=True, batch_size=6, val_fraction=0.1, test_fraction=0.1, **kw)


def test_streamed_batches_equal_the_in_memory_ones(folder):
    memory, streamed = make(folder), make(folder, stream=True)
    assert memory.describe() == streamed.describe() and memory.num_classes == 2
    assert memory.streamed is False and streamed.streamed is True
    assert same(run_batches(memory.train_dataloader(), 11), run_batches(streamed.train_dataloader(), 11))  # 2+ epochs
    assert torch.equal(memory.images("val"), streamed.images("val"))
    assert torch.equal(memory.images(("train", "val"), 35), streamed.images(("train", "val"), 35))


def test_in_memory_limit_decides(folder):
    tiny = make(folder, in_memory_limit=0)
    tiny.setup()
    assert tiny.streamed is True  # 40 x 3 x 8 x 8 bytes exceed 0 MiB
    roomy = make(folder)
    roomy.setup()
    assert roomy.streamed is False
    with pytest.raises(UserError, match="data.labels_per_class needs the images in memory"):
        make(folder, stream=True, labels_per_class=1).setup()


def test_flips_are_seeded_per_example_and_epoch(folder):
    dm = make(folder, stream=True)
    x, y = run_batches(dm.loader("train", shuffle=True), 1)[0]
    plain = dm.images("train")
    order = list(dm.loader("train", shuffle=True).sampler)
    matches = [torch.equal(x[k], plain[i]) for k, (_, i) in enumerate(order[:6])]
    flipped = [torch.equal(x[k], plain[i].flip(-1)) for k, (_, i) in enumerate(order[:6])]
    assert all(m or f for m, f in zip(matches, flipped)) and any(flipped) and any(matches)
    assert torch.equal(next(iter(dm.loader("val")))[0], dm.images("val"))  # evaluation: no flips


def test_streamed_resume_is_exact_with_workers(folder):
    straight = run_batches(make(folder, stream=True).train_dataloader(), 9)
    first = make(folder, stream=True).train_dataloader()
    run_batches(first, 4)
    again = make(folder, stream=True, num_workers=2).train_dataloader()
    again.load_state_dict(first.state_dict())
    assert same(straight[4:], run_batches(again, 5))


def test_cli_trains_and_resumes_on_a_streamed_folder(folder, tmp_path):
    from helpers import FAST, run_cli

    args = ["train", "model=dcgan", "model.generator.conv.base_channels=8", "model.discriminator.conv.base_channels=8",
            "data=image_folder", f"data.path={folder}", "data.size=8", "data.stream=true", "data.flip=true",
            "data.num_workers=2", "data.batch_size=6", *FAST]
    run_cli(*args, "trainer.max_steps=3", cwd=tmp_path)
    last = next(tmp_path.glob("outputs/train/*/*/checkpoints/last.ckpt"))
    assert torch.load(last, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"][0] == {
        "epoch": 0, "batches": 3}
    run_cli(*args, "trainer.max_steps=7", f"ckpt_path={last}", cwd=tmp_path)  # resumes into the second epoch
