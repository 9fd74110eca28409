"""pix2pix: the objective by hand (D's loss halved, L1 weighted 100, the non-saturating cGAN term on
(input, output) pairs), the ablations' weights, the data it refuses, and train -> eval -> sample
mode=translate through the CLI on edges2digits (plus the translate input readers)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from gen_runner.capabilities import SampleRequest
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.errors import UserError
from gen_runner.gans.objectives import StandardGAN
from gen_runner.gans.pix2pix import Pix2PixModule
from gen_runner.instantiate import build_datamodule
from helpers import FAST, read_metrics, reached, run_cli, run_directory

DATA = {"kind": "paired", "input_shape": [1, 1, 2], "shape": [1, 1, 2], "num_levels": 3, "num_classes": 2}


def conv1x1(in_channels: int, weight: float) -> nn.Conv2d:
    layer = nn.Conv2d(in_channels, 1, 1)
    with torch.no_grad():
        layer.weight.fill_(weight)
        layer.bias.zero_()
    return layer


def make(**kwargs) -> Pix2PixModule:
    """G(x) = 2x; D(x, y) = x + y pixel by pixel (a 1x1 PatchGAN)."""
    return Pix2PixModule(generator=lambda input_shape, data_shape, norm: conv1x1(1, 2.0),
                         discriminator=lambda input_shape, data_shape, norm: conv1x1(2, 1.0),
                         objective=StandardGAN(), data=DATA, **kwargs)


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


# input levels 0, 2 -> x = -1, 1; target levels 1, 2 -> y = 0, 1; G(x) = -2, 2
BATCH = (torch.tensor([[[[0, 2]]]], dtype=torch.uint8), torch.tensor([[[[1, 2]]]], dtype=torch.uint8),
         torch.tensor([1]))
REAL_LOGITS, FAKE_LOGITS, L1 = [-1.0, 2.0], [-3.0, 3.0], (2 + 1) / 2  # x + y, x + G(x), mean |G(x) - y|


def test_the_objective_by_hand():
    model = make()
    batch = model.gan_batch(BATCH)
    assert torch.equal(batch.input, torch.tensor([[[[-1.0, 1.0]]]])) and torch.equal(batch.fake, 2 * batch.input)
    d = model.discriminator_loss(batch).terms["train/d_loss"]
    expected_d = 0.5 * (np.mean([softplus(-t) for t in REAL_LOGITS]) + np.mean([softplus(t) for t in FAKE_LOGITS]))
    assert d.item() == pytest.approx(expected_d)
    g = model.generator_loss(batch)
    assert g.terms["train/g_loss"].item() == pytest.approx(np.mean([softplus(-t) for t in FAKE_LOGITS]))
    assert g.terms["train/g_l1"].item() == pytest.approx(100 * L1)
    assert reached(d, {"G": model.generator, "D": model.discriminator}) == {"D"}  # D judges G(x) detached


def test_the_ablations_drop_their_term():
    batch = BATCH
    l1_alone = make(adversarial_weight=0.0)
    assert set(l1_alone.generator_loss(l1_alone.gan_batch(batch)).terms) == {"train/g_l1"}
    cgan_alone = make(l1_weight=0.0, adversarial_weight=2.0)
    g = cgan_alone.generator_loss(cgan_alone.gan_batch(batch)).terms
    assert set(g) == {"train/g_loss"}
    assert g["train/g_loss"].item() == pytest.approx(2 * np.mean([softplus(-t) for t in FAKE_LOGITS]))
    with pytest.raises(UserError, match="at least one is positive"):
        make(l1_weight=0.0, adversarial_weight=0.0)


def test_refuses_data_that_is_not_paired_images():
    with pytest.raises(UserError, match="pick image-to-image data"):
        Pix2PixModule(lambda **_: None, lambda **_: None, StandardGAN(), {"kind": "images", "shape": [1, 8, 8]})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-step pix2pix on 8x8 edges2digits and a 3-step digits classifier."""
    cwd = tmp_path_factory.mktemp("pix2pix")
    small = ["data.size=8", "data.batch_size=8", "trainer.max_steps=3", *FAST]
    pix = run_directory(run_cli("train", "model=pix2pix", "data=edges2digits", "model.discriminator.patch=16",
                                "model.generator.base_channels=4", "model.discriminator.base_channels=4", *small,
                                cwd=cwd), cwd)
    classifier = run_directory(run_cli("train", "experiment=classifier_digits", *small, cwd=cwd), cwd)
    return cwd, pix / "checkpoints/last.ckpt", classifier / "checkpoints/last.ckpt"


def test_train_eval_sample_through_the_cli(runs):
    cwd, ckpt, classifier = runs
    out = run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.features=classifier",
                                f"eval.features_ckpt={classifier}", "eval.num_samples=40", "eval.metrics=[fid,prdc]",
                                "~logger", cwd=cwd), cwd)
    metrics = read_metrics(out)
    assert {"l1", "psnr", "ssim", "fid", "precision", "recall", "class_accuracy"} <= set(metrics)
    assert 0 <= metrics["l1"] <= 1 and 0 <= metrics["class_accuracy"] <= 1
    # rows input | 3 dropout draws | target
    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "input=split=test", "num_samples=5", "mode=translate",
                                "mode.draws=3", cwd=cwd), cwd)
    rows = torch.load(out / "samples/samples.pt")
    assert rows.shape == (5 * 5, 1, 8, 8) and (out / "samples/translate.png").is_file()
    assert not torch.equal(rows[1], rows[2])  # dropout at test time: the draws differ


def request(model, source, n=2, **options) -> SampleRequest:
    return SampleRequest(num_samples=n, options={"draws": 1, "direction": "AtoB", **options},
                         generator=torch.Generator().manual_seed(0), input=source,
                         data=lambda: build_datamodule(model.run_info["config"]["data"], 0))


def test_translate_reads_npy_files_and_image_folders_and_refuses_bad_input_in_one_line(runs):
    from PIL import Image

    cwd, ckpt, _ = runs
    ckpt_data = load_checkpoint(str(ckpt))
    model = model_from_checkpoint(ckpt_data)
    model.run_info = ckpt_data["gen_runner"]
    np.save(cwd / "levels.npy", np.full((3, 1, 8, 8), 16, dtype=np.uint8))  # the data's levels 0..16
    rows = model.translate(request(model, str(cwd / "levels.npy"))).samples
    assert rows.shape == (2 * 2, 1, 8, 8) and torch.equal(rows[0], torch.ones(1, 8, 8))  # no targets: 2 columns
    folder = cwd / "pictures"
    folder.mkdir()
    Image.new("L", (20, 20), 255).save(folder / "a.png")
    rows = model.translate(request(model, str(folder))).samples
    assert rows.shape == (2, 1, 8, 8) and torch.equal(rows[0], torch.ones(1, 8, 8))
    first, again = (model.translate(request(model, "split=val", 3)) for _ in range(2))
    assert torch.equal(first.samples, again.samples) and first.layout == 3  # seeded draws; input | output | target
    np.save(cwd / "wrong.npy", np.zeros((2, 3, 8, 8), dtype=np.float32))
    np.save(cwd / "bright.npy", np.full((2, 1, 8, 8), 17, dtype=np.uint8))
    for source, options, message in [(cwd / "wrong.npy", {}, "this model translates (1, 8, 8)"),
                                     (cwd / "bright.npy", {}, "outside the data's range"),
                                     (cwd / "nothing", {}, "no such file or folder"),
                                     ("split=dev", {}, "choose split=train"), (None, {}, "needs input="),
                                     ("split=test", {"direction": "BtoA"}, "(AtoB) only"),
                                     ("split=test", {"draws": 0}, "mode.draws=0")]:
        with pytest.raises(UserError, match=re.escape(message)):
            model.translate(request(model, None if source is None else str(source), **options))
    proc = run_cli("sample", f"ckpt_path={ckpt}", "mode=interpolate", cwd=cwd, check=False)
    assert proc.returncode != 0 and proc.stderr.strip().endswith("in the modes translate; pick one of them")
