"""PatchGAN: each patch choice's receptive field, computed from the built layers, is the configured
one (the paper's appendix stacks), and the output map has the size the layers give."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gen_runner.nets.patchgan import PatchGAN, layers_for_patch, output_size, patchgan, receptive_field


@pytest.mark.parametrize("patch, convs", [(1, 3), (16, 3), (70, 5), (286, 7)])
def test_each_patch_choice_sees_that_patch_with_the_papers_layer_count(patch, convs):
    net = patchgan((1, 256, 256), (3, 256, 256), patch=patch, base_channels=4)
    assert receptive_field(net) == patch
    # the paper's C layers (C64-C128 ... C64-...-C512-C512-C512) and the output convolution
    assert len([m for m in net.modules() if isinstance(m, nn.Conv2d)]) == convs
    widths = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)][:-1]
    assert widths == [4 * min(2**i, 8) for i in range(convs - 1)]


@pytest.mark.parametrize("side, patch, expected", [(256, 70, 30), (256, 286, 6), (256, 16, 126), (256, 1, 256),
                                                   (32, 70, 2), (32, 16, 14), (32, 1, 32), (32, "full", 6),
                                                   (8, 16, 2)])
def test_the_output_map_is_one_logit_per_patch_of_the_computed_size(side, patch, expected):
    net = patchgan((2, side, side), (1, side, side), patch=patch, base_channels=2)
    assert output_size(net, side) == expected
    assert net(torch.randn(2, 3, side, side)).shape == (2, 1, expected, expected)  # input and output channels


@pytest.mark.parametrize("side", [8, 16, 32, 64, 256])
def test_full_is_the_smallest_stack_whose_patch_covers_the_image(side):
    layers = layers_for_patch("full", side)
    assert receptive_field(patchgan((1, side, side), (1, side, side), patch="full", base_channels=2)) >= side
    assert layers == 2 or receptive_field(PatchGAN(2, layers - 1, base_channels=2)) < side
    assert side < 256 or layers == 6  # at 256x256 the paper's 286x286 ImageGAN


def test_unconditional_and_too_small_images():
    assert patchgan((3, 32, 32), (1, 32, 32), patch=70, conditional=False).net[0].in_channels == 1
    with pytest.raises(ValueError, match="patch=70 needs larger images than 16x16"):
        patchgan((1, 16, 16), (1, 16, 16), patch=70)
    with pytest.raises(ValueError, match="patch=40"):
        patchgan((1, 32, 32), (1, 32, 32), patch=40)
