"""DCGAN nets: shapes for every supported size, the paper's layer rules and initialisation."""
import pytest
import torch
from torch import nn

from gen_runner.nets.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_shapes_and_ranges(shape):
    g, d = DCGANGenerator(100, shape, base_channels=16), DCGANDiscriminator(shape, base_channels=16)
    x = g(torch.rand(4, 100) * 2 - 1)
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    assert d(x).shape == (4,)


def test_paper_layout_at_64():
    g, d = DCGANGenerator(100, (3, 64, 64)), DCGANDiscriminator((3, 64, 64))
    widths = [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]  # 4x4x1024 in the paper's figure is ngf=128
    assert not any(isinstance(m, nn.Linear) for m in [*g.modules(), *d.modules()])
    first_conv_then = list(d.net)[:2]
    assert isinstance(first_conv_then[1], nn.LeakyReLU)  # no BatchNorm on D's input layer
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    std = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]).std()
    assert std.item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("shape", [(2,), (1, 9, 9), (1, 8, 6)])
def test_unsupported_shapes(shape):
    with pytest.raises(ValueError, match="DCGAN needs"):
        DCGANGenerator(10, shape)
