"""2-D toy distributions for GAN and flow benchmarks.

Mixtures of Gaussians and the checkerboard have exact densities; the FFJORD shapes
(moons, circles, spirals, pinwheel, swiss roll) are defined only by their samplers.

References:
    Srivastava et al. 2017, "VEEGAN", arXiv:1705.07761 (ring of 8 and grid of 25 Gaussians).
    Lin et al. 2018, "PacGAN", arXiv:1712.04086 (same 2-D benchmarks and protocol).
    Grathwohl et al. 2019, "FFJORD", arXiv:1810.01367, github.com/rtqichen/ffjord lib/toy_data.py.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "Toy2D",
    "GaussianMixture",
    "Ring",
    "Grid",
    "EightGaussians",
    "Checkerboard",
    "Moons",
    "Circles",
    "Spirals",
    "Pinwheel",
    "SwissRoll",
]


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _rand(n: int, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, device=_device(generator))


def _randn(*shape: int, generator: torch.Generator | None) -> Tensor:
    return torch.randn(*shape, generator=generator, device=_device(generator))


class Toy2D:
    """A distribution over R^2: `sample(n, generator)` and, where one exists, `log_prob(x)`."""

    has_log_prob: bool = False

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """`n` float32 samples of shape [n, 2]; deterministic given `generator`."""
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of points `x` [n, 2] as a tensor [n]."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form density; use a sample-based metric")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not isinstance(v, Tensor))
        return f"{type(self).__name__}({args})"


def check(name: str, value, low: float, exclusive: bool = True, integer: bool = False) -> None:
    """A distribution option must be a number (a whole one if `integer`) above `low` (or at least
    `low`); a ValueError naming data.distribution.<name> otherwise."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < low or (exclusive and value == low):
        raise ValueError(f"data.distribution.{name}={value!r}: pass a {'whole number' if integer else 'number'} "
                         f"{'>' if exclusive else '>='} {low}")


class GaussianMixture(Toy2D):
    """Equal-weight mixture of isotropic Gaussians N(centers[k], std^2 I)."""

    has_log_prob = True

    def __init__(self, centers: Tensor, std: float):
        check("std", std, 0)
        self.centers = torch.as_tensor(centers, dtype=torch.float32).reshape(-1, 2)
        self.std = float(std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = len(self.centers)
        idx = torch.randint(k, (n,), generator=generator, device=_device(generator))
        return self.centers.to(idx.device)[idx] + self.std * _randn(n, 2, generator=generator)

    def log_prob(self, x: Tensor) -> Tensor:
        c = self.centers.to(device=x.device, dtype=x.dtype)
        sq = ((x[:, None, :] - c[None]) ** 2).sum(-1)  # [n, K]
        log_norm = -math.log(2 * math.pi * self.std**2)  # 2-D isotropic normaliser
        return torch.logsumexp(-0.5 * sq / self.std**2, dim=1) + log_norm - math.log(len(c))


class Ring(GaussianMixture):
    """`num_modes` Gaussians on a circle; mode k at angle 2*pi*k/num_modes.

    Default: 8 modes, radius 1, std 0.01 (Srivastava et al. 2017; Lin et al. 2018).
    """

    def __init__(self, num_modes: int = 8, radius: float = 1.0, std: float = 0.01):
        check("num_modes", num_modes, 1, exclusive=False, integer=True)
        check("radius", radius, 0)
        angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
        centers = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        super().__init__(centers, std)
        self.num_modes, self.radius = num_modes, radius


class Grid(GaussianMixture):
    """`side` x `side` Gaussians on a centred square grid.

    Default: 25 modes at {-4, -2, 0, 2, 4}^2, std 0.05 (Srivastava et al. 2017; Lin et al. 2018).
    """

    def __init__(self, side: int = 5, spacing: float = 2.0, std: float = 0.05):
        check("side", side, 1, exclusive=False, integer=True)
        check("spacing", spacing, 0)
        axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
        centers = torch.cartesian_prod(axis, axis)
        super().__init__(centers, std)
        self.side, self.spacing = side, spacing


class EightGaussians(GaussianMixture):
    """FFJORD's "8gaussians": centres scale*(cos 2*pi*k/8, sin 2*pi*k/8), std 0.5.

    FFJORD divides its samples by 1.414 afterwards; we do not (Grathwohl et al. 2019).
    """

    def __init__(self, scale: float = 4.0, std: float = 0.5):
        check("scale", scale, 0)
        angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        super().__init__(scale * torch.stack([angles.cos(), angles.sin()], dim=1), std)
        self.scale = scale


class Checkerboard(Toy2D):
    """FFJORD's "checkerboard": uniform on 8 alternating 2x2 squares of a 4x4 board on [-4, 4)^2.

    Total area 32, so the density is 1/32 on the occupied squares and 0 elsewhere.
    A cell is occupied when floor(x/2) + floor(y/2) is even (Grathwohl et al. 2019).
    """

    has_log_prob = True

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        x1 = _rand(n, generator) * 4 - 2
        row = torch.randint(0, 2, (n,), generator=generator, device=_device(generator))
        x2 = _rand(n, generator) - row * 2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], dim=1) * 2

    def log_prob(self, x: Tensor) -> Tensor:
        inside = ((x >= -4) & (x < 4)).all(dim=1)
        cells = torch.floor(x / 2)
        occupied = inside & ((cells[:, 0] + cells[:, 1]) % 2 == 0)
        out = torch.full(x.shape[:1], -math.inf, dtype=x.dtype, device=x.device)
        return out.masked_fill(occupied, -math.log(32.0))


class Moons(Toy2D):
    """FFJORD's "moons": scikit-learn's two half circles, scaled by 2 and shifted by (-1, -0.2).

    Positions along each moon are uniform (scikit-learn spaces them evenly); Gaussian noise `noise`
    is added before scaling (Grathwohl et al. 2019).
    """

    def __init__(self, noise: float = 0.1):
        check("noise", noise, 0, exclusive=False)
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        t = math.pi * _rand(n, generator)
        upper = torch.randint(0, 2, (n,), generator=generator, device=_device(generator)).bool()
        outer = torch.stack([t.cos(), t.sin()], dim=1)
        inner = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
        x = torch.where(upper[:, None], outer, inner) + self.noise * _randn(n, 2, generator=generator)
        return x * 2 + torch.tensor([-1.0, -0.2], device=x.device)


class Circles(Toy2D):
    """FFJORD's "circles": scikit-learn's two concentric circles (radii 1 and `factor`), times 3.

    Angles are uniform; Gaussian noise `noise` is added before scaling (Grathwohl et al. 2019).
    """

    def __init__(self, factor: float = 0.5, noise: float = 0.08):
        check("factor", factor, 0)
        check("noise", noise, 0, exclusive=False)
        self.factor, self.noise = factor, noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        angle = 2 * math.pi * _rand(n, generator)
        inner = torch.randint(0, 2, (n,), generator=generator, device=_device(generator))
        radius = torch.where(inner.bool(), self.factor, 1.0)
        x = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
        return (x + self.noise * _randn(n, 2, generator=generator)) * 3


class Spirals(Toy2D):
    """FFJORD's "2spirals": two interleaved arms of 1.5 turns, point-symmetric about the origin.

    t = sqrt(u) * 3*pi; arm (-t cos t + U[0,0.5), t sin t + U[0,0.5)), the other arm negated,
    all divided by 3, plus Gaussian noise `noise` (Grathwohl et al. 2019).
    """

    def __init__(self, noise: float = 0.1):
        check("noise", noise, 0, exclusive=False)
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        t = _rand(n, generator).sqrt() * 3 * math.pi  # 540 degrees
        arm = torch.stack([-t.cos() * t + 0.5 * _rand(n, generator), t.sin() * t + 0.5 * _rand(n, generator)], 1)
        sign = 1 - 2 * torch.randint(0, 2, (n, 1), generator=generator, device=_device(generator))
        return sign * arm / 3 + self.noise * _randn(n, 2, generator=generator)


class Pinwheel(Toy2D):
    """FFJORD's "pinwheel": `num_classes` arms, each a Gaussian (radial_std, tangential_std) about
    (1, 0) rotated by 2*pi*k/num_classes + rate * exp(radial coordinate), then times 2
    (Grathwohl et al. 2019; originally Johnson et al. 2016, "Composing graphical models...").
    """

    def __init__(self, radial_std: float = 0.3, tangential_std: float = 0.1, num_classes: int = 5, rate: float = 0.25):
        check("radial_std", radial_std, 0)
        check("tangential_std", tangential_std, 0)
        check("num_classes", num_classes, 1, exclusive=False, integer=True)
        check("rate", rate, -math.inf)  # any sign: the arms' twist and its direction
        self.radial_std, self.tangential_std = radial_std, tangential_std
        self.num_classes, self.rate = num_classes, rate

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        scale = torch.tensor([self.radial_std, self.tangential_std], device=_device(generator))
        f = _randn(n, 2, generator=generator) * scale
        f[:, 0] += 1.0
        k = torch.randint(self.num_classes, (n,), generator=generator, device=_device(generator))
        angle = 2 * math.pi * k / self.num_classes + self.rate * f[:, 0].exp()
        c, s = angle.cos(), angle.sin()
        # Row vector times [[c, -s], [s, c]], as FFJORD's einsum("ti,tij->tj").
        return 2 * torch.stack([f[:, 0] * c + f[:, 1] * s, -f[:, 0] * s + f[:, 1] * c], dim=1)


class SwissRoll(Toy2D):
    """FFJORD's 2-D "swissroll": scikit-learn's swiss roll, coordinates (x, z), divided by 5.

    t = 1.5*pi*(1 + 2u), point (t cos t, t sin t) plus Gaussian noise `noise`, all / 5,
    which lies within about [-3, 3]^2 (Grathwohl et al. 2019).
    """

    def __init__(self, noise: float = 1.0):
        check("noise", noise, 0, exclusive=False)
        self.noise = noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        t = 1.5 * math.pi * (1 + 2 * _rand(n, generator))
        x = torch.stack([t * t.cos(), t * t.sin()], dim=1)
        return (x + self.noise * _randn(n, 2, generator=generator)) / 5
