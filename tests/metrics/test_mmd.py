"""The Gaussian-kernel MMD (Gretton et al. 2012): the unbiased estimate by hand, its sign, and the
median heuristic."""
from __future__ import annotations

import math

import pytest
import torch

from gen_runner.metrics.fidelity import gaussian_mmd
from gen_runner.metrics.suite import fidelity_metrics


def test_unbiased_mmd2_by_hand():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])
    k = lambda d: math.exp(-d * d / 2)  # sigma = 1
    xx, yy = k(1), k(2)  # the off-diagonal pair of each set (counted twice, over m(m-1) = 2)
    xy = (k(0) + k(2) + k(1) + k(1)) / 4
    mmd2, mmd, sigma = gaussian_mmd(x, y, bandwidth=1.0)
    assert sigma == 1.0
    assert mmd2 == pytest.approx(xx + yy - 2 * xy)
    assert mmd == pytest.approx(math.sqrt(max(mmd2, 0)))


def test_median_heuristic_is_the_median_pairwise_distance():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0], [7.0]])
    distances = sorted(abs(a - b) for i, a in enumerate([0, 1, 3, 7]) for b in [0, 1, 3, 7][i + 1:])
    assert gaussian_mmd(x, y)[2] == pytest.approx((distances[2] + distances[3]) / 2)


def test_mmd_separates_distributions_and_is_near_zero_for_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    shifted = torch.randn(400, 8, generator=g) + 1.0
    same, _, _ = gaussian_mmd(a, b)
    apart, mmd, _ = gaussian_mmd(a, shifted)
    assert abs(same) < 0.01 < apart and mmd == pytest.approx(math.sqrt(apart))


def test_mmd_is_an_eval_metric_next_to_kid():
    g = torch.Generator().manual_seed(1)
    real = (torch.randn(50, 4, generator=g), torch.randn(50, 3, generator=g))
    fake = (torch.randn(50, 4, generator=g) + 2, torch.randn(50, 3, generator=g))
    metrics, protocol = fidelity_metrics(real, fake, ["mmd"])
    assert set(metrics) == {"mmd2", "mmd"} and metrics["mmd"] > 0
    assert protocol["mmd_sigma"] > 0 and "Gretton" in protocol["mmd_kernel"]
