"""Fidelity metrics on synthetic features, against closed forms and brute-force definitions."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gen_runner.metrics.fidelity import (class_accuracy, density_coverage, fid, inception_score, kid,
                                         kid_subset_size, precision_recall)


def gaussian(n, mean, scale, seed, dim=8):
    """n samples of N(mean, scale scale^T) in `dim` dimensions, float32 like extracted features."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, dim, generator=g) @ scale + mean).float()


def blob(n, center, seed, dim=2):
    return gaussian(n, torch.full((dim,), float(center)), torch.eye(dim), seed, dim)


# FID (Heusel et al. 2017)

def test_fid_of_a_set_with_itself_is_zero():
    x = gaussian(2000, 3.0, torch.rand(8, 8, generator=torch.Generator().manual_seed(0)), seed=1)
    trace = torch.cov(x.double().T).trace().item()
    assert abs(fid(x, x)) < 1e-6 * trace


def test_fid_matches_the_closed_form_on_sample_moments():
    scales = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    real = gaussian(4000, torch.linspace(0, 1, 8), scales[0], seed=1)
    fake = gaussian(4000, 2.0, scales[1] + torch.eye(8), seed=2)
    r, f = real.double().numpy(), fake.double().numpy()
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    expected = (np.sum((r.mean(0) - f.mean(0)) ** 2)
                + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert fid(real, fake) == pytest.approx(expected, rel=1e-4)


# KID (Bińkowski et al. 2018)

def unbiased_poly_mmd2(x, y, degree=3, coef=1.0):
    x, y = x.double(), y.double()
    kernel = lambda a, b: (a @ b.T / x.shape[1] + coef) ** degree  # noqa: E731
    m = len(x)
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    within = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (m * (m - 1))
    return (within - 2 * kernel(x, y).mean()).item()


def test_kid_on_one_subset_of_everything_is_the_unbiased_mmd():
    real, fake = blob(300, 0.0, seed=0, dim=6), blob(300, 0.5, seed=1, dim=6)
    mean, std = kid(real, fake, subsets=1, subset_size=300)
    assert mean == pytest.approx(unbiased_poly_mmd2(real, fake), rel=1e-9)
    assert std == 0.0


def test_kid_separates_distributions():
    real, same, other = blob(1000, 0.0, seed=0, dim=16), blob(1000, 0.0, seed=1, dim=16), blob(1000, 0.3, seed=2, dim=16)
    mean_same, std_same = kid(real, same, subsets=50, subset_size=500)
    mean_other, std_other = kid(real, other, subsets=50, subset_size=500)
    assert abs(mean_same) < 3 * std_same
    assert mean_other > 10 * std_other > 0
    assert mean_other > 20 * abs(mean_same)


def test_kid_caps_the_subset_size_and_is_seeded():
    real, fake = blob(120, 0.0, seed=0), blob(80, 1.0, seed=1)
    assert kid_subset_size(len(real), len(fake), 1000) == 80
    assert kid(real, fake, subsets=5, subset_size=1000) == kid(real, fake, subsets=5, subset_size=80)
    state = torch.get_rng_state()
    assert kid(real, fake, subsets=5, subset_size=50, seed=3) == kid(real, fake, subsets=5, subset_size=50, seed=3)
    assert kid(real, fake, subsets=5, subset_size=50, seed=3) != kid(real, fake, subsets=5, subset_size=50, seed=4)
    assert torch.equal(torch.get_rng_state(), state)


# Inception Score (Salimans et al. 2016)

def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(1000, 10))
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_confident_balanced_predictions_is_the_class_count():
    labels = torch.arange(10000) % 10
    mean, _ = inception_score(50.0 * torch.nn.functional.one_hot(labels, 10))
    assert mean == pytest.approx(10.0, rel=0.02)


def test_inception_score_is_seeded():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 3
    state = torch.get_rng_state()
    assert inception_score(logits, seed=1) == inception_score(logits, seed=1)
    assert inception_score(logits, seed=1) != inception_score(logits, seed=2)
    assert torch.equal(torch.get_rng_state(), state)


# Precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020)

def brute_force(real, fake, k_pr, k_dc):
    """The four metrics from full distance matrices."""
    real, fake = real.double(), fake.double()
    radius = lambda x, k: torch.cdist(x, x).sort(dim=1).values[:, k]  # noqa: E731  (column 0 is the point itself)
    d = torch.cdist(real, fake)  # [N, M]
    precision = (d <= radius(real, k_pr)[:, None]).any(0).double().mean().item()
    recall = (d <= radius(fake, k_pr)[None, :]).any(1).double().mean().item()
    inside = d < radius(real, k_dc)[:, None]
    density = inside.sum().item() / (k_dc * len(fake))
    coverage = inside.any(1).double().mean().item()
    return precision, recall, density, coverage


@pytest.mark.parametrize("chunk_size", [7, 1024])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_chunked_knn_metrics_match_brute_force(chunk_size, k):
    real, fake = blob(50, 0.0, seed=0, dim=5), blob(37, 0.4, seed=1, dim=5)
    got = (*precision_recall(real, fake, k, chunk_size=chunk_size),
           *density_coverage(real, fake, k, chunk_size=chunk_size))
    assert got == pytest.approx(brute_force(real, fake, k, k), abs=1e-12)


def test_knn_metrics_of_a_set_with_itself():
    x = blob(500, 0.0, seed=0, dim=4)
    assert precision_recall(x, x) == (1.0, 1.0)
    density, coverage = density_coverage(x, x)
    assert density == pytest.approx(1.0, abs=1e-12)
    assert coverage == 1.0


def test_knn_metrics_of_far_apart_sets_are_zero():
    real, fake = blob(300, 0.0, seed=0), blob(300, 100.0, seed=1)
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_knn_metrics_of_a_fake_set_covering_one_of_two_blobs():
    real = torch.cat([blob(1000, -10.0, seed=0), blob(1000, 10.0, seed=1)])
    fake = blob(1000, -10.0, seed=2)
    precision, recall = precision_recall(real, fake, chunk_size=256)
    density, coverage = density_coverage(real, fake, chunk_size=256)
    assert precision == pytest.approx(1.0, abs=0.03)
    assert recall == pytest.approx(0.5, abs=0.03)
    assert density == pytest.approx(1.0, rel=0.1)  # the fakes match the blob they cover
    assert coverage == pytest.approx(0.5, abs=0.03)


def test_knn_metrics_reject_mismatched_features_and_large_k():
    with pytest.raises(ValueError, match="same F"):
        precision_recall(torch.zeros(10, 3), torch.zeros(10, 4))
    with pytest.raises(ValueError, match="k=10"):
        density_coverage(torch.randn(10, 3), torch.randn(10, 3), k=10)


def test_class_accuracy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    assert class_accuracy(logits, torch.tensor([0, 1, 0, 2])) == 0.5
    assert class_accuracy(logits, torch.tensor([0, 1, 2, 0])) == 1.0
    assert math.isclose(class_accuracy(logits[:3], torch.tensor([1, 1, 1])), 1 / 3)
