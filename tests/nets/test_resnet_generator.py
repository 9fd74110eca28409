"""CycleGAN's ResNet generator (gen_runner/nets/resnet_generator.py) against the paper's appendix 7.2."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gen_runner.nets.resnet_generator import ResnetBlock, ResnetGenerator


def test_the_papers_9_block_generator_has_its_layers_and_parameter_count():
    g = ResnetGenerator(3, 3)  # c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs[:3]] == \
        [(3, 64, 7, 1), (64, 128, 3, 2), (128, 256, 3, 2)]
    assert (convs[-1].in_channels, convs[-1].out_channels, convs[-1].kernel_size[0]) == (64, 3, 7)
    assert sum(isinstance(m, ResnetBlock) for m in g.modules()) == 9
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == [128, 64]
    assert all(c.padding_mode == "reflect" for c in convs)  # reflection padding everywhere
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in g.modules()) == 1 + 2 + 9 * 2 + 2
    assert isinstance(g[-1], nn.Tanh)
    assert sum(p.numel() for p in g.parameters()) == 11_378_179  # the authors' code prints 11.378 M


@pytest.mark.parametrize("blocks, side, downsampling", [(6, 16, 2), (9, 8, 1), (2, 16, 3)])
def test_it_keeps_the_image_size(blocks, side, downsampling):
    g = ResnetGenerator(1, 3, base_channels=8, num_blocks=blocks, num_downsampling=downsampling)
    y = g(torch.randn(2, 1, side, side))
    assert y.shape == (2, 3, side, side) and y.abs().max() <= 1


def test_sides_it_cannot_halve_fail_in_one_line():
    with pytest.raises(ValueError, match="multiples of 4"):
        ResnetGenerator(1, 1, base_channels=4, num_blocks=1)(torch.randn(1, 1, 6, 6))
