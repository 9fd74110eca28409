"""Mode coverage on exact samples, with the PacGAN/VEEGAN protocol (2,500 samples, 3 std)."""
import math

import pytest
import torch

from gen_runner.data.toy import Grid, Ring
from gen_runner.metrics.modes import mode_coverage

WITHIN_3_STD = 1 - math.exp(-4.5)  # mass of a 2-D isotropic Gaussian within 3 std: 98.89%


@pytest.mark.parametrize("dist, k", [(Grid(), 25), (Ring(), 8)])
def test_exact_samples_capture_every_mode(dist, k):
    samples = dist.sample(2500, generator=torch.Generator().manual_seed(0))
    m = mode_coverage(samples, dist.centers, dist.std)
    assert m["modes"] == k
    assert m["high_quality_pct"] == pytest.approx(100 * WITHIN_3_STD, abs=0.6)
    assert m["reverse_kl"] < 0.02  # sampling noise of a multinomial histogram


def test_collapsed_samples_capture_one_mode():
    dist = Grid()
    samples = dist.centers[7] + dist.std * torch.randn(2500, 2, generator=torch.Generator().manual_seed(1))
    m = mode_coverage(samples, dist.centers, dist.std)
    assert m["modes"] == 1
    assert m["reverse_kl"] == pytest.approx(math.log(25))


def test_far_samples_are_low_quality_and_capture_nothing():
    dist = Ring()
    samples = torch.full((100, 2), 5.0)
    m = mode_coverage(samples, dist.centers, dist.std)
    assert m == {"modes": 0, "high_quality_pct": 0.0, "reverse_kl": pytest.approx(math.log(8))}


def test_hand_computed_histogram():
    dist = Ring()
    # 3 samples on mode 0, 1 on mode 2: p = (3/4, 1/4) over 8 modes.
    samples = torch.stack([dist.centers[0]] * 3 + [dist.centers[2]])
    m = mode_coverage(samples, dist.centers, dist.std)
    expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
    assert m["modes"] == 2 and m["high_quality_pct"] == 100.0
    assert m["reverse_kl"] == pytest.approx(expected)
