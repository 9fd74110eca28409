"""Stacked MNIST mode count and reverse KL (Metz et al. 2017; VEEGAN; PacGAN)."""
import math

import pytest
import torch

from gen_runner.metrics.modes import stacked_modes


def triples(codes):
    """Digit triples [N, 3] of the mode numbers 0-999."""
    codes = torch.as_tensor(codes)
    return torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=1)


def test_every_mode_equally():
    m = stacked_modes(triples(torch.arange(1000).repeat(26)))
    assert m["modes"] == 1000
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_one_mode():
    m = stacked_modes(torch.tensor([[3, 1, 4]]).repeat(26000, 1))
    assert m["modes"] == 1
    assert m["reverse_kl"] == pytest.approx(math.log(1000))


def test_hand_computed_histogram():
    m = stacked_modes(triples([123, 123, 456, 789]))  # p = 1/2, 1/4, 1/4
    assert m["modes"] == 3
    assert m["reverse_kl"] == pytest.approx(0.5 * math.log(500) + 0.5 * math.log(250))


@pytest.mark.parametrize("digits", [torch.tensor([[1, 2, 10]]), torch.zeros(4, 2, dtype=torch.long),
                                    torch.zeros(0, 3, dtype=torch.long)])
def test_rejects_bad_digits(digits):
    with pytest.raises(ValueError, match="digits"):
        stacked_modes(digits)
