"""Sample-quality metrics on precomputed features [N, F] or classifier logits [N, K].

- FID: Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local
  Nash equilibrium".
- KID: Bińkowski et al. 2018, "Demystifying MMD GANs".
- Kernel MMD with a Gaussian kernel: Gretton, Borgwardt, Rasch, Schölkopf & Smola 2012, "A Kernel
  Two-Sample Test" (the unbiased MMD^2_u of eq. 3), its bandwidth by the median heuristic.
- Inception Score: Salimans et al. 2016, "Improved techniques for training GANs".
- Precision and recall: Kynkäänniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models".
- Density and coverage: Naeem et al. 2020, "Reliable fidelity and diversity metrics for
  generative models".

FID, KID and IS are torchmetrics' implementations, fed through an identity "feature extractor",
in float64. KID and IS draw random subsets from the global CPU generator; here they draw from a
generator seeded by `seed`, and the caller's random state is restored afterwards. The k-NN
metrics compute float64 distances in blocks of `chunk_size` rows, so an N x M distance matrix
never exists beyond one block.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
from torch import Tensor, nn
# From the submodules: torchmetrics.image exports these only when torch-fidelity is installed.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

__all__ = ["fid", "kid", "kid_subset_size", "gaussian_mmd", "inception_score", "precision_recall", "density_coverage",
           "class_accuracy", "code_accuracy"]


class _Precomputed(nn.Module):
    """Identity "network", so that torchmetrics takes features that are already extracted."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def _metric(cls, features: Tensor, **kwargs):
    """A torchmetrics image metric reading `features` as they are, on their device."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer", category=UserWarning)
        return cls(feature=_Precomputed(features.shape[1]), **kwargs).to(features.device)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed the global CPU generator (torchmetrics' torch.randperm draws), then restore it."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def _as_pair(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Both sets as float64 [N, F] with the same F."""
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected real and fake features [N, F] with the same F, "
                         f"got {tuple(real.shape)} and {tuple(fake.shape)}")
    return real.detach().double(), fake.detach().double()


def fid(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets (sample covariances).

    Both sets are shifted by the real mean first: FID does not change, and torchmetrics builds
    the covariance from raw second moments, which cancel badly when the mean dwarfs the spread."""
    real, fake = _as_pair(real, fake)
    shift = real.mean(dim=0)
    metric = _metric(FrechetInceptionDistance, real)
    metric.update(real - shift, real=True)
    metric.update(fake - shift, real=False)
    return metric.compute().item()


def kid_subset_size(n_real: int, n_fake: int, subset_size: int) -> int:
    """The subset size `kid` uses: `subset_size`, capped by the smaller of the two sets."""
    return min(subset_size, n_real, n_fake)


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        coef: float = 1.0, *, seed: int = 0) -> tuple[float, float]:
    """Mean and (population) std over `subsets` random subsets of the unbiased MMD^2 estimate
    with the polynomial kernel k(x, y) = (x.y / F + coef)^degree.

    Each subset takes `kid_subset_size(len(real), len(fake), subset_size)` samples of each set
    (without replacement); record that effective size with the result."""
    real, fake = _as_pair(real, fake)
    size = kid_subset_size(len(real), len(fake), subset_size)
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples of each set, got {len(real)} real and {len(fake)} fake")
    metric = _metric(KernelInceptionDistance, real, subsets=subsets, subset_size=size, degree=degree,
                     coef=float(coef))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with _seeded(seed):
        mean, std = metric.compute()
    return mean.item(), std.item()


def _kernel_sum(x: Tensor, y: Tensor, sigma: float, chunk_size: int) -> float:
    """sum_ij exp(-||x_i - y_j||^2 / (2 sigma^2)), a block of rows at a time."""
    return sum(torch.exp(-d.square() / (2 * sigma**2)).sum().item() for _, d in _row_blocks(x, y, chunk_size))


def gaussian_mmd(real: Tensor, fake: Tensor, bandwidth: float | None = None, *, median_points: int = 1000,
                 chunk_size: int = 1024) -> tuple[float, float, float]:
    """(MMD^2_u, MMD, sigma) of the two sets under k(x, y) = exp(-||x - y||^2 / (2 sigma^2)).

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_ij k(x_i, y_j), unbiased, so it can dip below 0 when the sets agree; MMD
    is its square root, 0 there. sigma: `bandwidth`, or the median distance between the pooled
    first `median_points` of each set (the median heuristic, deterministic)."""
    real, fake = _as_pair(real, fake)
    m, n = len(real), len(fake)
    if m < 2 or n < 2:
        raise ValueError(f"MMD needs at least 2 samples of each set, got {m} real and {n} fake")
    if bandwidth is None:
        pooled = torch.cat([real[:median_points], fake[:median_points]])
        distances = torch.cdist(pooled, pooled)
        bandwidth = distances[torch.triu_indices(len(pooled), len(pooled), 1).unbind()].quantile(0.5).item()
    if not bandwidth > 0:
        raise ValueError(f"MMD bandwidth must be positive, got {bandwidth}")
    xx = (_kernel_sum(real, real, bandwidth, chunk_size) - m) / (m * (m - 1))  # k(x, x) = 1 on the diagonal
    yy = (_kernel_sum(fake, fake, bandwidth, chunk_size) - n) / (n * (n - 1))
    xy = _kernel_sum(real, fake, bandwidth, chunk_size) / (m * n)
    mmd2 = xx + yy - 2 * xy
    return mmd2, max(mmd2, 0.0) ** 0.5, bandwidth


def inception_score(logits: Tensor, splits: int = 10, *, seed: int = 0) -> tuple[float, float]:
    """exp E_x KL(p(y|x) || p(y)), mean and (sample) std over `splits` random splits.

    `logits` [N, K] are the classifier's pre-softmax outputs; each split is scored against its own
    marginal p(y), as in Salimans et al.'s code."""
    if logits.dim() != 2:
        raise ValueError(f"expected logits [N, K], got {tuple(logits.shape)}")
    logits = logits.detach().double()
    metric = _metric(InceptionScore, logits, splits=splits)
    metric.update(logits)
    with _seeded(seed):
        mean, std = metric.compute()
    return mean.item(), std.item()


def _row_blocks(x: Tensor, y: Tensor, chunk_size: int):
    """Yield (rows, cdist(x[rows], y)) for consecutive blocks of `chunk_size` rows of x."""
    for start in range(0, len(x), chunk_size):
        rows = slice(start, start + chunk_size)
        yield rows, torch.cdist(x[rows], y)


def _knn_radii(x: Tensor, k: int, chunk_size: int) -> Tensor:
    """Distance from each row of x to its k-th nearest neighbour among the other rows."""
    if not 1 <= k < len(x):
        raise ValueError(f"k-th nearest neighbours need 1 <= k < number of samples, got k={k} and {len(x)} samples")
    # The k + 1 smallest distances of a row include its zero distance to itself.
    return torch.cat([d.topk(k + 1, dim=1, largest=False).values[:, k] for _, d in _row_blocks(x, x, chunk_size)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, *, chunk_size: int = 1024) -> tuple[float, float]:
    """Share of fakes inside the real manifold (precision) and of reals inside the fake manifold
    (recall); a manifold is the union of closed balls around its samples, each with the radius to
    the sample's k-th nearest neighbour in its own set (the paper's Eq. 1 and code use <=)."""
    real, fake = _as_pair(real, fake)
    radii_real, radii_fake = _knn_radii(real, k, chunk_size), _knn_radii(fake, k, chunk_size)
    fake_in_real = torch.zeros(len(fake), dtype=torch.bool, device=fake.device)
    real_in_fake = []
    for rows, d in _row_blocks(real, fake, chunk_size):
        fake_in_real |= (d <= radii_real[rows, None]).any(dim=0)
        real_in_fake.append((d <= radii_fake).any(dim=1))
    return fake_in_real.double().mean().item(), torch.cat(real_in_fake).double().mean().item()


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, *, chunk_size: int = 1024) -> tuple[float, float]:
    """Density: real k-NN balls containing each fake, averaged over fakes and divided by k.
    Coverage: share of real k-NN balls that contain at least one fake.

    Balls are open, as in the authors' `prdc` code, so a set scored against itself has density
    exactly 1 (each real ball holds its centre and k - 1 neighbours) when no distances tie."""
    real, fake = _as_pair(real, fake)
    radii = _knn_radii(real, k, chunk_size)
    hits, covered = 0, 0
    for rows, d in _row_blocks(real, fake, chunk_size):
        inside = d < radii[rows, None]
        hits += inside.sum().item()
        covered += inside.any(dim=1).sum().item()
    return hits / (k * len(fake)), covered / len(real)


def class_accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of samples whose arg-max class is their label."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [N, K] and labels [N], got {tuple(logits.shape)} and {tuple(labels.shape)}")
    return (logits.argmax(dim=1) == labels).double().mean().item()


def code_accuracy(logits: Tensor, codes: Tensor) -> float:
    """How well an unsupervised categorical code predicts the classifier's label: the accuracy of
    the best one-to-one map from code values to classes (the Hungarian algorithm on the code-class
    contingency table), the clustering accuracy InfoGAN's MNIST result (5% error) is read as."""
    from scipy.optimize import linear_sum_assignment

    predicted = logits.argmax(dim=1)
    size = max(logits.shape[1], int(codes.max()) + 1)
    table = torch.zeros(size, size, dtype=torch.long)
    table.index_put_((codes.long(), predicted), torch.ones_like(predicted), accumulate=True)
    rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
    return table[rows, cols].sum().item() / len(codes)
