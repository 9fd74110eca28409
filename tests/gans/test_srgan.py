"""SRGAN / SRResNet: sub-pixel upsampling (shapes and the PixelShuffle rearrangement), the nets'
layouts, the content losses (MSE, a feature map's MSE, VGG54's 1/12.75), the bicubic baseline by
hand, G's initialisation from an SRResNet run, and train -> eval -> sample through the CLI on sr4."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio

from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.data.translation import downsample
from gen_runner.errors import UserError
from gen_runner.gans.srgan import FeatureContent, SRGANModule, bicubic, classifier_feature_map
from gen_runner.instantiate import build_datamodule
from gen_runner.nets.classifier import ConvClassifier
from gen_runner.nets.srresnet import SRGANDiscriminator, SRResNet, srresnet, upsampling_blocks
from gen_runner.nets.vgg import VGG19Features
from helpers import FAST, read_metrics, run_cli, run_directory


# -- nets -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_upsampling_blocks_multiply_both_sides_by_the_factor(factor):
    blocks = upsampling_blocks(4, factor)
    assert len(blocks) == int(math.log2(factor))
    assert blocks(torch.randn(2, 4, 3, 5)).shape == (2, 4, 3 * factor, 5 * factor)


def test_pixel_shuffle_puts_channel_4c_plus_2a_plus_b_at_pixel_2i_plus_a_2j_plus_b():
    x = torch.arange(2 * 8 * 2 * 3, dtype=torch.float).view(2, 8, 2, 3)  # 8 = 2 output channels x 2 x 2
    y = nn.PixelShuffle(2)(x)
    for c in range(2):
        for a in range(2):
            for b in range(2):
                assert torch.equal(y[:, c, a::2, b::2], x[:, 4 * c + 2 * a + b])


def test_srresnet_and_its_discriminator_have_the_papers_layout():
    g = SRResNet(3, 4)
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == 2  # two x2 sub-pixel blocks for 4x
    assert len(g.blocks) == 16 + 2 and g.head[0].kernel_size == (9, 9) and g.tail[0].kernel_size == (9, 9)
    assert g(torch.randn(1, 3, 6, 6)).shape == (1, 3, 24, 24)
    d = SRGANDiscriminator((3, 96, 96))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1),
                                                             (256, 2), (512, 1), (512, 2)]
    assert d.head[1].in_features == 512 * 6 * 6 and d.head[1].out_features == 1024
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 7  # not on the first conv
    assert d(torch.randn(2, 3, 96, 96)).shape == (2,)
    with pytest.raises(ValueError, match="powers of 2"):
        srresnet((1, 8, 8), (1, 24, 24))


# -- content losses ------------------------------------------------------------------------------
def test_the_feature_content_loss_is_the_mse_of_the_feature_maps_rescaled():
    net = nn.Conv2d(1, 2, 3, padding=1)
    out, target = torch.randn(2, 1, 8, 8, requires_grad=True), torch.randn(2, 1, 8, 8)
    loss = FeatureContent(net, lambda x: x, rescale=12.75)(out, target)
    assert loss.item() == pytest.approx(F.mse_loss(net(out), net(target)).item() / 12.75**2, rel=1e-5)
    assert FeatureContent(net, lambda x: x)(target, target).item() == 0
    loss.backward()
    assert out.grad is not None and all(p.grad is None for p in net.parameters())  # the feature net is frozen


def test_the_classifier_feature_map_is_its_last_conv_activation_before_the_last_pooling():
    classifier = nn.Module()
    classifier.net = ConvClassifier((1, 16, 16), 10, channels=4)
    features = classifier_feature_map(classifier)
    assert isinstance(features[-1], nn.ReLU) and features(torch.randn(2, 1, 16, 16)).shape == (2, 8, 8, 8)


def test_vgg54_loads_torchvision_keys_and_refuses_other_files(tmp_path):
    state = {k: torch.zeros_like(v) for k, v in VGG19Features().state_dict().items()}
    state["features.34.weight"].normal_()
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file also holds the classifier
    torch.save(state, tmp_path / "vgg19.pth")
    vgg = VGG19Features.from_file(tmp_path / "vgg19.pth")
    assert torch.equal(vgg.features[34].weight, state["features.34.weight"])  # conv5_4, then its ReLU: phi_5,4
    assert len(vgg.features) == 36 and vgg(torch.rand(1, 1, 32, 32)).shape == (1, 512, 2, 2)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="not a VGG19 state dict"):
        VGG19Features.from_file(tmp_path / "other.pth")
    content = FeatureContent.vgg54(str(tmp_path / "vgg19.pth"))
    assert content.rescale == 12.75  # the paper's VGG54 sees images in [0, 1]:
    assert torch.equal(content.to_input(torch.tensor([-1.0, 1.0])), torch.tensor([0.0, 1.0]))


DATA = {"kind": "paired", "input_shape": [1, 4, 4], "shape": [1, 8, 8], "num_levels": 17, "num_classes": 10}


def test_content_options_and_their_defaults():
    def make(**kw):
        return SRGANModule(lambda **_: nn.Identity(), lambda **_: nn.Identity(), None, DATA, **kw)

    assert make().adversarial_weight == 0 and make(content="features", vgg19_weights="w").adversarial_weight == 1e-3
    assert make(adversarial_weight=1e-3).adversarial_weight == 1e-3  # SRGAN-MSE
    with pytest.raises(UserError, match="one feature network"):
        make(content="features")
    with pytest.raises(UserError, match="choose mse"):
        make(content="vgg")


def test_on_plain_images_the_inputs_are_their_bicubic_downsampling():
    model = SRGANModule(srresnet, lambda **_: nn.Identity(), None, {**DATA, "kind": "images", "input_shape": None},
                        factor=2)
    assert model.input_shape == (1, 4, 4)
    hr = torch.randint(17, (2, 1, 8, 8), dtype=torch.uint8)
    lr, target, labels, mask = model.batch_parts((hr, torch.tensor([3, 4])))
    assert torch.equal(lr, downsample(hr, 2, 17)) and target is hr and labels.tolist() == [3, 4] and mask is None
    with pytest.raises(UserError, match="model.factor=3"):
        SRGANModule(srresnet, lambda **_: nn.Identity(), None, {**DATA, "kind": "images"}, factor=3)


def test_the_bicubic_baseline_keeps_constants_and_is_torchs_bicubic():
    assert torch.allclose(bicubic(torch.full((1, 1, 4, 4), 0.3), (16, 16)), torch.full((1, 1, 16, 16), 0.3))
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(bicubic(x, (8, 8)), F.interpolate(x, size=(8, 8), mode="bicubic").clamp(0, 1))


# -- the CLI --------------------------------------------------------------------------------------
TINY = ["experiment=srgan_sr4", "data.size=16", "model.generator.base_channels=4", "model.generator.num_blocks=1",
        "model.discriminator.base_channels=4", "model.discriminator.hidden=8", "data.batch_size=8"]


def test_srresnet_then_srgan_from_it_eval_and_sample_through_the_cli(tmp_path):
    mse = run_directory(run_cli("train", *TINY, "model.content=mse", "trainer.max_steps=2", *FAST, cwd=tmp_path),
                        tmp_path) / "checkpoints" / "last.ckpt"
    clf = run_directory(run_cli("train", "experiment=classifier_digits", "data.size=16", "trainer.max_steps=2",
                                "name=clf", *FAST, cwd=tmp_path), tmp_path) / "checkpoints" / "last.ckpt"
    srgan = run_directory(run_cli("train", *TINY, f"model.content_features_ckpt={clf}", f"model.init_ckpt={mse}",
                                  "trainer.max_steps=1", *FAST, cwd=tmp_path),
                          tmp_path) / "checkpoints" / "last.ckpt"
    model = model_from_checkpoint(load_checkpoint(srgan))
    assert model.content == "features" and model.adversarial_weight == 1e-3
    model.load_generator(str(mse))  # what init_ckpt did before SRGAN's first step
    assert all(torch.equal(v, load_checkpoint(mse)["state_dict"][f"generator.{k}"])
               for k, v in model.generator.state_dict().items())
    with pytest.raises(UserError, match="does not fit"):
        model.load_generator(str(clf))

    proc = run_cli("eval", f"ckpt_path={srgan}", "eval.features=classifier", f"eval.features_ckpt={clf}",
                   "eval.metrics=[fid]", cwd=tmp_path)
    metrics = read_metrics(run_directory(proc, tmp_path))
    for key in ("l1", "psnr", "ssim", "fid", "class_accuracy", "bicubic_psnr", "bicubic_ssim", "bicubic_fid"):
        assert np.isfinite(metrics[key]), key
    dm = build_datamodule(load_checkpoint(srgan)["gen_runner"]["config"]["data"], 0)  # the bicubic row by hand
    x, y, _ = (torch.cat(p) for p in zip(*dm.loader("test")))
    upsampled = F.interpolate(x.float() / 16, size=(16, 16), mode="bicubic").clamp(0, 1)
    psnr = peak_signal_noise_ratio(upsampled, y.float() / 16, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert metrics["bicubic_psnr"] == pytest.approx(psnr.mean().item(), rel=1e-5)

    proc = run_cli("sample", f"ckpt_path={srgan}", "mode=translate", "input=split=test", "num_samples=3", cwd=tmp_path)
    tiles = torch.load(run_directory(proc, tmp_path) / "samples" / "samples.pt")
    assert tiles.shape == (3 * 3, 1, 16, 16)  # input (shown resized) | output | target
