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


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("minibatch", ["stddev", "discrimination"])
def test_minibatch_layers_shapes(shape, minibatch):
    d = DCGANDiscriminator(shape, base_channels=8, minibatch=minibatch, num_kernels=6, kernel_dim=3)
    assert d(torch.rand(5, *shape) * 2 - 1).shape == (5,)
    encoder = DCGANDiscriminator(shape, base_channels=8, minibatch=minibatch, num_kernels=6, out_features=4)
    assert encoder(torch.rand(5, *shape)).shape == (5, 4)


def test_minibatch_discrimination_reads_the_other_examples():
    """Without BatchNorm the plain critic judges each image alone; with minibatch discrimination
    (Salimans et al. 2016, sec. 3.2) image 0's logit moves when image 4 changes."""
    torch.manual_seed(0)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    changed = x.clone()
    changed[4] = -changed[4]
    plain = DCGANDiscriminator((1, 28, 28), base_channels=8, norm="none")
    assert torch.equal(plain(x)[:4], plain(changed)[:4])
    d = DCGANDiscriminator((1, 28, 28), base_channels=8, norm="none", minibatch="discrimination")
    features = d.net[:-2](x)
    assert features.shape == (5, 16 * 7 * 7) and d.net[-2](features).shape == (5, 16 * 7 * 7 + 100)
    assert not torch.allclose(d(x)[:4], d(changed)[:4])
    assert d(x[:1]).shape == (1,)


def test_minibatch_discrimination_starts_seeing_the_batch():
    """o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1) is 1 from j = i plus the others' share: at the
    DCGAN critic's init (BatchNorm) it lies well between 1 (the others at exp(-large) = 0, no
    gradient from them) and the batch size (every example looks the same)."""
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 28, 28), base_channels=16, minibatch="discrimination")
    o = d.net[-2](d.net[:-2](torch.rand(64, 1, 28, 28) * 2 - 1))[:, -100:]
    assert 1.5 < o.mean().item() < 32


def test_minibatch_options():
    old = DCGANDiscriminator((1, 8, 8), base_channels=4, minibatch_stddev=True)  # configs and checkpoints before
    new = DCGANDiscriminator((1, 8, 8), base_channels=4, minibatch="stddev")
    assert old.state_dict().keys() == new.state_dict().keys()
    with pytest.raises(ValueError, match="choose discrimination, stddev or null"):
        DCGANDiscriminator((1, 8, 8), minibatch="dropout")
    with pytest.raises(ValueError, match="set minibatch alone"):
        DCGANDiscriminator((1, 8, 8), minibatch_stddev=True, minibatch="discrimination")
