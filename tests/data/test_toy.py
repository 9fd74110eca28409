"""2-D toy distributions: samplers, exact densities and the PacGAN/VEEGAN/FFJORD geometry."""
import math

import pytest
import torch
from torch import distributions as D

from gen_runner.data.toy import (
    Checkerboard,
    Circles,
    EightGaussians,
    GaussianMixture,
    Grid,
    Moons,
    Pinwheel,
    Ring,
    Spirals,
    SwissRoll,
    Toy2D,
)

ALL = [Ring(), Grid(), EightGaussians(), Checkerboard(), Moons(), Circles(), Spirals(), Pinwheel(), SwissRoll()]
MIXTURES = [d for d in ALL if isinstance(d, GaussianMixture)]
NO_DENSITY = [d for d in ALL if not d.has_log_prob]
ids = lambda d: type(d).__name__  # noqa: E731


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def grid_integral(log_prob, lo: float, hi: float, h: float, center=(0.0, 0.0)) -> float:
    """Midpoint rule over the square [lo, hi]^2 shifted by `center`."""
    axis = torch.arange(lo + h / 2, hi, h, dtype=torch.float64)
    pts = torch.cartesian_prod(axis + center[0], axis + center[1])
    return float(log_prob(pts).exp().sum() * h * h)


@pytest.mark.parametrize("dist", ALL, ids=ids)
def test_sample_shape_dtype_and_determinism(dist: Toy2D):
    x = dist.sample(501, gen(0))
    assert x.shape == (501, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, dist.sample(501, gen(0)))
    assert not torch.equal(x, dist.sample(501, gen(1)))


@pytest.mark.parametrize("dist", NO_DENSITY, ids=ids)
def test_no_density_raises(dist: Toy2D):
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        dist.log_prob(torch.zeros(3, 2))


@pytest.mark.parametrize("dist", ALL, ids=ids)
def test_ffjord_scale(dist: Toy2D):
    # All benchmarks live in roughly [-4, 4]^2 (8 Gaussians: centres at radius 4 plus std 0.5).
    x = dist.sample(2000, gen(0))
    bound = 7.0 if isinstance(dist, EightGaussians) else 4.5
    assert x.abs().max() < bound


def test_ring8_geometry():
    ring = Ring()
    assert ring.centers.shape == (8, 2) and ring.std == 0.01
    torch.testing.assert_close(ring.centers.norm(dim=1), torch.ones(8))
    angles = torch.atan2(ring.centers[:, 1], ring.centers[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(angles, 2 * math.pi * torch.arange(8) / 8, atol=1e-6, rtol=0)


def test_grid25_geometry():
    grid = Grid()
    assert grid.centers.shape == (25, 2) and grid.std == 0.05
    expected = {(float(a), float(b)) for a in range(-4, 5, 2) for b in range(-4, 5, 2)}
    assert {tuple(c) for c in grid.centers.tolist()} == expected


def test_eight_gaussians_geometry():
    g = EightGaussians()
    assert g.centers.shape == (8, 2) and g.std == 0.5
    torch.testing.assert_close(g.centers.norm(dim=1), torch.full((8,), 4.0))


@pytest.mark.parametrize("dist", MIXTURES, ids=ids)
def test_mixture_log_prob_matches_torch_distributions(dist: GaussianMixture):
    k = len(dist.centers)
    ref = D.MixtureSameFamily(
        D.Categorical(torch.ones(k)), D.Independent(D.Normal(dist.centers, dist.std), 1)
    )
    x = torch.cat([dist.sample(200, gen(0)), 3 * torch.randn(50, 2, generator=gen(1))])
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dist", [Ring(), Grid()], ids=ids)
def test_narrow_mixture_integrates_to_one_per_mode(dist: GaussianMixture):
    # Modes are far apart relative to std, so integrate a +-8 std box around each one.
    s = dist.std
    total = sum(grid_integral(dist.log_prob, -8 * s, 8 * s, s / 8, tuple(c.tolist())) for c in dist.centers.double())
    assert total == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("dist", [EightGaussians(), Ring(std=0.2)], ids=ids)
def test_wide_mixture_integrates_to_one(dist: GaussianMixture):
    assert grid_integral(dist.log_prob, -7.0, 7.0, 0.02) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("dist", MIXTURES, ids=ids)
def test_mixture_samples_near_a_centre_and_cover_all_modes(dist: GaussianMixture):
    x = dist.sample(2500, gen(0))  # PacGAN/VEEGAN protocol size
    dist_to_centres = torch.cdist(x, dist.centers)
    nearest = dist_to_centres.min(dim=1)
    assert (nearest.values < 5 * dist.std).all()
    assert nearest.indices.unique().numel() == len(dist.centers)


def test_checkerboard_density_values():
    cb = Checkerboard()
    centres = torch.cartesian_prod(*(torch.tensor([-3.0, -1.0, 1.0, 3.0]),) * 2)
    density = cb.log_prob(centres).exp()
    occupied = density > 0
    assert occupied.sum() == 8
    torch.testing.assert_close(density[occupied], torch.full((8,), 1 / 32))
    # Alternating board: horizontally adjacent squares differ.
    board = occupied.reshape(4, 4)
    assert (board[:, 1:] != board[:, :-1]).all() and (board[1:] != board[:-1]).all()
    # Outside [-4, 4)^2 there is no mass.
    assert torch.isinf(cb.log_prob(torch.tensor([[5.0, 0.0], [-0.5, -4.5], [4.0, 1.0]]))).all()


def test_checkerboard_samples_match_density():
    cb = Checkerboard()
    x = cb.sample(40_000, gen(0))
    assert torch.isfinite(cb.log_prob(x)).all()
    cells = (torch.floor(x / 2) + 2).long()  # 0..3 per axis
    counts = torch.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16).float() / len(x)
    occupied = cb.log_prob(torch.cartesian_prod(*(torch.tensor([-3.0, -1.0, 1.0, 3.0]),) * 2)).isfinite()
    assert (counts[~occupied] == 0).all()
    torch.testing.assert_close(counts[occupied], torch.full((8,), 1 / 8), atol=0.01, rtol=0)


def test_checkerboard_integrates_to_one():
    assert grid_integral(Checkerboard().log_prob, -5.0, 5.0, 0.05) == pytest.approx(1.0, abs=1e-6)


def test_circles_radii():
    r = Circles().sample(4000, gen(0)).norm(dim=1)
    outer = r > 2.25  # radii 1 and factor 0.5, times 3: 3 and 1.5
    assert outer.float().mean() == pytest.approx(0.5, abs=0.05)
    assert r[outer].median() == pytest.approx(3.0, abs=0.05)
    assert r[~outer].median() == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize(
    "dist, mean",
    # scikit-learn's moons have mean (0.5, 0.25); FFJORD maps them by 2x + (-1, -0.2).
    [(Moons(), (0.0, 0.3)), (Spirals(), (0.0, 0.0)), (Pinwheel(), (0.0, 0.0))],
    ids=["Moons", "Spirals", "Pinwheel"],
)
def test_ffjord_shape_means(dist, mean):
    x = dist.sample(20_000, gen(0))
    torch.testing.assert_close(x.mean(0), torch.tensor(mean), atol=0.05, rtol=0)
