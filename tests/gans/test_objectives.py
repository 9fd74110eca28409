"""The original GAN losses against values computed by hand."""
import math

import pytest
import torch

from gen_runner.gans.objectives import Hinge, LeastSquares, StandardGAN, Wasserstein


def test_discriminator_loss_is_binary_cross_entropy():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    # -log sigmoid(r) averaged + -log(1 - sigmoid(f)) averaged
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2 + (math.log(2) + math.log(1 + math.exp(-1))) / 2
    assert StandardGAN().d_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses():
    fake = torch.tensor([0.0, 3.0])
    d = torch.sigmoid(fake)
    assert StandardGAN("minimax").g_loss(fake).item() == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-6)
    assert StandardGAN("non_saturating").g_loss(fake).item() == pytest.approx((-torch.log(d)).mean().item(), rel=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    """When D confidently rejects fakes (logit -10), log(1 - D) has almost no gradient."""
    fake = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(StandardGAN("minimax").g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(StandardGAN("non_saturating").g_loss(fake), fake)
    assert abs(g_mm.item()) < 1e-4 < 0.99 < abs(g_ns.item())


def test_unknown_generator_loss():
    with pytest.raises(ValueError, match="non_saturating or minimax"):
        StandardGAN("wasserstein")


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    assert Wasserstein().d_loss(real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert Wasserstein().g_loss(fake).item() == pytest.approx(1.0)


def test_least_squares_losses_with_the_papers_codings():
    real, fake = torch.tensor([0.5, 1.0]), torch.tensor([0.0, 2.0])
    ls = LeastSquares()  # a, b, c = 0, 1, 1
    assert ls.d_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0) / 2 + 0.5 * (0 + 4) / 2)
    assert ls.g_loss(fake).item() == pytest.approx(0.5 * (1 + 1) / 2)
    chi2 = LeastSquares(a=-1, b=1, c=0)
    assert chi2.d_loss(real, fake).item() == pytest.approx(0.5 * 0.25 / 2 + 0.5 * (1 + 9) / 2)
    assert chi2.g_loss(fake).item() == pytest.approx(0.5 * 4 / 2)


def test_hinge_losses():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-3.0, 0.5])
    assert Hinge().d_loss(real, fake).item() == pytest.approx((0.5 + 0) / 2 + (0 + 1.5) / 2)
    assert Hinge().g_loss(fake).item() == pytest.approx(1.25)
