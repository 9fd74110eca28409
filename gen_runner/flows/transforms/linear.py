"""Linear bijections over channels (features for vectors) from Glow (Kingma & Dhariwal 2018, "Glow:
Generative Flow with Invertible 1x1 Convolutions"): the fixed permutations it compares against,
"reverse" (RealNVP's) and "shuffle" (sec. 3.2, 5.1), and the learned invertible 1x1 convolution
(sec. 3.2), plain or in its LU-decomposed form (eq. 10)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.flows.transforms.base import Transform

__all__ = ["InvertibleConv1x1", "Permutation", "random_rotation"]


def _generator(seed: int | None) -> torch.Generator | None:
    """A generator seeded with `seed`, or None (PyTorch's global one) when there is no seed."""
    return None if seed is None else torch.Generator().manual_seed(seed)


def random_rotation(n: int, seed: int | None = None) -> torch.Tensor:
    """An n x n random orthogonal matrix, the Q of the QR decomposition of a standard Gaussian one,
    in float64 (Glow's initialization; det is +1 or -1). `seed` None draws from the global RNG."""
    return torch.linalg.qr(torch.randn(n, n, generator=_generator(seed), dtype=torch.float64))[0]


class Permutation(Transform):
    """y = x[:, index]: a fixed permutation of dimension 1 (channels of [B, C, H, W], features of
    [B, D]), log-det 0. `index` is a buffer, so a random one survives saving and loading.

    `Permutation.reverse(n)` reverses the order, `Permutation.shuffle(n, seed)` draws a random one.
    """

    def __init__(self, index: torch.Tensor):
        super().__init__()
        index = torch.as_tensor(index, dtype=torch.long)
        if index.dim() != 1 or not torch.equal(index.sort().values, torch.arange(len(index))):
            raise ValueError(f"not a permutation of 0..n-1: {index.tolist()}")
        self.register_buffer("index", index)

    @classmethod
    def reverse(cls, num_features: int, seed: int | None = None) -> Permutation:
        """The order reversed (RealNVP's alternation of the channel halves; Glow's "reverse").
        `seed` is unused (the order is fixed); it is there so that every permutation factory is
        called alike, `factory(num_features, seed=...)` (gen_runner/flows/build.py)."""
        return cls(torch.arange(num_features - 1, -1, -1))

    @classmethod
    def shuffle(cls, num_features: int, seed: int | None = None) -> Permutation:
        """A random permutation, fixed once drawn (Glow's "shuffle"); `seed` None uses the global RNG."""
        return cls(torch.randperm(num_features, generator=_generator(seed)))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x.index_select(1, self.index), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y.index_select(1, torch.argsort(self.index)), y.new_zeros(y.shape[0])


class InvertibleConv1x1(Transform):
    """y = W x over the channels of [B, C, H, W] (a 1x1 convolution) or the features of [B, D] (a
    dense linear map), W a learned C x C matrix initialised to a random rotation; log-det
    H*W * log|det W| (times 1 for vectors).

    Plain (`lu=False`): W is the parameter, log|det W| by `slogdet`, the inverse by `linalg.inv`.
    LU (`lu=True`, eq. 10): W = P L (U + diag(sign_s * exp(log_s))) with P a fixed permutation
    matrix and sign_s fixed signs (buffers), L unit lower triangular and U strictly upper triangular
    (learned: the entries of `lower` below and of `upper` above the diagonal), log_s learned; then
    log|det W| = sum(log_s) and the inverse takes two triangular solves. Both are initialised from
    the same rotation given the same `seed` (None: the global RNG, so every layer gets its own).
    """

    def __init__(self, num_channels: int, lu: bool = False, seed: int | None = None):
        super().__init__()
        self.lu = lu
        weight = random_rotation(num_channels, seed)
        dtype = torch.get_default_dtype()
        if not lu:
            self.weight = nn.Parameter(weight.to(dtype))
            return
        permutation, lower, upper = torch.linalg.lu(weight)
        s = upper.diagonal()
        self.register_buffer("permutation", permutation.to(dtype))
        self.register_buffer("sign_s", s.sign().to(dtype))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(dtype))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dtype))
        self.log_s = nn.Parameter(s.abs().log().to(dtype))

    def _triangular_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """L (unit lower triangular) and U + diag(sign_s * exp(log_s)) of the LU form."""
        eye = torch.eye(len(self.log_s), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def matrix(self) -> torch.Tensor:
        """W, the dense C x C matrix."""
        if not self.lu:
            return self.weight
        lower, upper = self._triangular_factors()
        return self.permutation @ lower @ upper

    def _inverse_matrix(self) -> torch.Tensor:
        """W^-1; in LU form U^-1 L^-1 P^T by triangular solves."""
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._triangular_factors()
        inv_lower_pt = torch.linalg.solve_triangular(lower, self.permutation.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, inv_lower_pt, upper=True)

    def _logabsdet_matrix(self) -> torch.Tensor:
        """log|det W|."""
        return self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight)[1]

    @staticmethod
    def _multiply(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return F.linear(x, matrix) if x.dim() == 2 else F.conv2d(x, matrix[:, :, None, None])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logabsdet = self._logabsdet_matrix() * x.shape[2:].numel()
        return self._multiply(x, self.matrix()), logabsdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logabsdet = self._logabsdet_matrix() * y.shape[2:].numel()
        return self._multiply(y, self._inverse_matrix()), -logabsdet.expand(y.shape[0])

    def extra_repr(self) -> str:
        return f"{len(self.log_s) if self.lu else len(self.weight)}, lu={self.lu}"
