"""Context encoders: the reconstruction loss reads the masked region alone (hand values), the
filled image keeps the context, the channel-wise fully connected layer connects each map to itself
alone, and train -> eval -> sample through the CLI on inpaint_center."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gen_runner.errors import UserError
from gen_runner.gans.context_encoder import ContextEncoderModule, masked_mse
from gen_runner.gans.objectives import StandardGAN
from gen_runner.nets.context_encoder import ChannelwiseFC, context_encoder
from helpers import FAST, read_metrics, run_cli, run_directory

DATA = {"kind": "paired", "input_shape": [1, 2, 2], "shape": [1, 2, 2], "num_levels": 3, "num_classes": 2}


class Constant(nn.Module):
    """G(x) = a constant image, whatever the input."""

    def __init__(self, value):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x):
        return self.value.expand_as(x)


def make(value, **kwargs) -> ContextEncoderModule:
    return ContextEncoderModule(lambda input_shape, data_shape: Constant(value),
                                lambda input_shape, data_shape: nn.Sequential(nn.Flatten(), nn.Linear(4, 1)),
                                StandardGAN(), DATA, **kwargs)


# target levels 0, 1 / 2, 2 -> [-1, 0 / 1, 1]; the right column is missing
TARGET = torch.tensor([[[[0, 1], [2, 2]]]], dtype=torch.uint8)
MASK = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])


def test_the_reconstruction_loss_reads_the_masked_region_alone_by_hand():
    prediction = [[[[5.0, 0.5], [-7.0, 0.0]]]]  # the context's entries (5, -7) are far off, and must not count
    model = make(prediction, adversarial_weight=0.0)
    batch = model.gan_batch((TARGET, TARGET, torch.tensor([0]), MASK))
    # the filled image: the context kept, the prediction pasted into the hole
    assert torch.equal(batch.fake, torch.tensor([[[[-1.0, 0.5], [1.0, 0.0]]]]))
    expected = ((0.5 - 0.0) ** 2 + (0.0 - 1.0) ** 2) / 2  # the mean over the two missing pixels
    losses = model.generator_loss(batch)
    assert set(losses.terms) == {"train/g_rec"}
    assert losses.terms["train/g_rec"].item() == pytest.approx(0.999 * expected)
    assert losses.stats["train/rec_mse"].item() == pytest.approx(expected)
    # the loss's gradient reaches only G's outputs in the hole
    losses.total.backward()
    assert torch.equal(model.generator.value.grad == 0, torch.tensor([[[[True, False], [True, False]]]]))


def test_masked_mse_broadcasts_the_mask_over_channels():
    out, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    assert masked_mse(out, target, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])).item() == 1.0
    assert masked_mse(out, 3 * target * torch.tensor([1.0, 0.0]).view(1, 1, 1, 2), MASK).item() == 0.0


def test_the_joint_loss_weights_and_what_d_judges():
    model = make([[[[0.0, 0.0], [0.0, 0.0]]]])
    batch = model.gan_batch((TARGET, TARGET, torch.tensor([0]), MASK))
    g = model.generator_loss(batch).terms
    logit = model.discriminator(batch.fake)
    assert g["train/g_loss"].item() == pytest.approx(0.001 * nn.functional.softplus(-logit).mean().item())
    with pytest.raises(UserError, match="data with masks"):
        model.gan_batch((TARGET, TARGET, torch.tensor([0])))
    with pytest.raises(UserError, match="at least one is positive"):
        make(0.0, reconstruction_weight=0.0, adversarial_weight=0.0)


def test_the_channelwise_layer_connects_each_map_to_itself_alone():
    layer = ChannelwiseFC(3, 4)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    layer(x)[:, 1].sum().backward()
    assert x.grad[:, [0, 2]].abs().sum() == 0 and x.grad[:, 1].abs().sum() > 0
    assert layer.weight.shape == (3, 16, 16)  # m n^4 weights
    assert context_encoder((3, 32, 32), (3, 32, 32), base_channels=4)(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="side 4"):
        context_encoder((1, 12, 12), (1, 12, 12))


def test_train_eval_sample_through_the_cli(tmp_path):
    small = ["data.size=8", "data.batch_size=8", "trainer.max_steps=3", *FAST]
    ckpt = run_directory(run_cli("train", "model=context_encoder", "data=inpaint_center", *small,
                                 "model.generator.base_channels=4", "model.discriminator.base_channels=4",
                                 cwd=tmp_path), tmp_path)
    ckpt = ckpt / "checkpoints/last.ckpt"
    metrics = read_metrics(run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.num_samples=20", "~logger",
                                                 cwd=tmp_path), tmp_path))
    assert {"l1", "psnr", "ssim"} <= set(metrics)
    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "input=split=test", "num_samples=4", cwd=tmp_path),
                        tmp_path)
    rows = torch.load(out / "samples/samples.pt")  # masked input | filled | target
    assert rows.shape == (12, 1, 8, 8)
    context = torch.ones(8, 8)
    context[2:6, 2:6] = 0
    assert torch.equal(rows[1] * context, rows[2] * context)  # the filled image keeps the target's context
    assert torch.equal(rows[0][0, 2:6, 2:6], torch.zeros(4, 4))  # the input is shown with its hole
