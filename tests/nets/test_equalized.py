"""Equalized learning rate and pixel norm (Karras et al. 2018, sec. 4.1, 4.2): gen_runner/nets/equalized.py."""
from __future__ import annotations

import math

import pytest
import torch

from gen_runner.nets.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm


@pytest.mark.parametrize("layer, fan_in", [(lambda: EqualizedLinear(400, 300), 400),
                                           (lambda: EqualizedConv2d(64, 200, 3), 64 * 9)])
def test_stored_weight_is_standard_normal_and_effective_weight_has_he_std(layer, fan_in):
    torch.manual_seed(0)
    net = layer()
    w = net.weight.detach()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    assert net.weight_scale == pytest.approx(math.sqrt(2 / fan_in))
    assert net.effective_weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.01)
    assert torch.all(net.bias == 0)


def test_the_layer_applies_the_scaled_weight_at_runtime():
    torch.manual_seed(0)
    lin, conv = EqualizedLinear(5, 3, gain=1.0), EqualizedConv2d(2, 4, 3)
    x = torch.randn(7, 5)
    torch.testing.assert_close(lin(x), x @ (lin.weight / math.sqrt(5)).t())
    img = torch.randn(2, 2, 6, 6)
    expected = torch.nn.functional.conv2d(img, conv.weight * math.sqrt(2 / 18), padding=1)
    torch.testing.assert_close(conv(img), expected)
    # The gradient reaches the stored parameter through the constant: d(c w x)/dw = c x.
    lin(torch.ones(1, 5)).sum().backward()
    torch.testing.assert_close(lin.weight.grad, torch.full((3, 5), 1 / math.sqrt(5)))


def test_lr_multiplier_keeps_the_effective_init_and_scales_adams_step():
    torch.manual_seed(0)
    slow = EqualizedLinear(512, 512, lr_multiplier=0.01, bias_init=1.0)
    assert slow.weight.std().item() == pytest.approx(100, rel=0.01)  # stored N(0, 1 / lrmul^2)
    assert slow.effective_weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.01)
    torch.testing.assert_close(slow.effective_bias, torch.ones(512))
    # One Adam step from the same effective weights moves them lr_multiplier times as far.
    fast = EqualizedLinear(512, 512, bias_init=1.0)
    with torch.no_grad():
        fast.weight.copy_(slow.effective_weight / fast.weight_scale)
    x = torch.randn(4, 512)
    moves = []
    for net in (slow, fast):
        before = net.effective_weight.detach().clone()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(x).pow(2).sum().backward()
        opt.step()
        moves.append((net.effective_weight.detach() - before).abs().mean())
    assert (moves[0] / moves[1]).item() == pytest.approx(0.01, rel=1e-2)  # up to Adam's eps


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = torch.randn(3, 16, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 5, 5))
    torch.testing.assert_close(PixelNorm()(torch.randn(4, 32)).pow(2).mean(1), torch.ones(4))
    # A rescaled input gives the same output: the normalization is per pixel.
    torch.testing.assert_close(PixelNorm()(x * 7), y, rtol=1e-5, atol=1e-6)
