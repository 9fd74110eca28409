"""pix2pix's U-Net: depth follows the image size down to a 1x1 bottleneck, every decoder layer's
output has its mirrored encoder layer's shape (so the skip concatenates), and the output the
target's shape; dropout stays on in eval mode."""
from __future__ import annotations

import pytest
import torch

from gen_runner.nets.unet import unet, unet_depth


@pytest.mark.parametrize("side", [8, 16, 32, 64, 128, 256])
def test_skips_join_layers_of_one_size_from_8_to_256(side):
    net = unet((3, side, side), (1, side, side), base_channels=2)
    depth = unet_depth(side, side)
    assert len(net.down) == depth and len(net.up) == depth - 1
    shapes = {}
    for i, layer in enumerate(net.down):
        layer.register_forward_hook(lambda m, a, out, i=i: shapes.__setitem__(("down", i), out.shape))
    for j, layer in enumerate(net.up):
        layer.register_forward_hook(lambda m, a, out, j=j: shapes.__setitem__(("up", j), out.shape))
    out = net(torch.randn(1, 3, side, side))
    assert out.shape == (1, 1, side, side)
    assert shapes[("down", depth - 1)][2:] == (1, 1)  # the bottleneck
    for j in range(depth - 1):  # decoder layer j is concatenated with encoder layer depth - 2 - j
        assert shapes[("up", j)] == shapes[("down", depth - 2 - j)]
    widths = [shapes[("down", i)][1] for i in range(depth)]
    assert widths == [2 * min(2**i, 8) for i in range(depth)]  # C64, C128, ..., capped at C512


def test_dropout_stays_on_at_test_time_in_the_first_three_decoder_layers():
    net = unet((1, 16, 16), (1, 16, 16), base_channels=4).eval()
    x = torch.randn(2, 1, 16, 16)
    assert not torch.equal(net(x), net(x))
    assert [any(type(m).__name__ == "_Dropout" for m in layer) for layer in net.up] == [True, True, True]
    plain = unet((1, 16, 16), (1, 16, 16), dropout=False).eval()
    assert torch.equal(plain(x), plain(x))


def test_refuses_sizes_that_do_not_halve_to_one_and_pairs_of_two_sizes():
    with pytest.raises(ValueError, match="side 2"):
        unet((1, 12, 12), (1, 12, 12))
    with pytest.raises(ValueError, match="same size"):
        unet((1, 4, 4), (1, 16, 16))
