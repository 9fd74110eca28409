"""GAN objectives as small callables over discriminator logits.

Each objective has `d_loss(real_logits, fake_logits)` (minimised by the discriminator) and
`g_loss(fake_logits)` (minimised by the generator); both return scalars (means over the batch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["Objective", "StandardGAN", "Wasserstein", "LeastSquares", "Hinge"]


class Objective:
    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class StandardGAN(Objective):
    """The original GAN game (Goodfellow et al. 2014, "Generative Adversarial Nets").

    D maximises log D(x) + log(1 - D(G(z))) with D = sigmoid(logit), i.e. minimises
    softplus(-real) + softplus(fake). The generator either minimises the game's own term,
    log(1 - D(G(z))) = -softplus(fake) (`minimax`, which saturates while D rejects its samples
    confidently), or maximises log D(G(z)), i.e. minimises softplus(-fake) (`non_saturating`, the
    paper's recommendation in practice: same fixed point, strong early gradients).
    """

    def __init__(self, generator_loss: str = "non_saturating"):
        if generator_loss not in ("non_saturating", "minimax"):
            raise ValueError(f"generator_loss={generator_loss!r}: choose non_saturating or minimax")
        self.generator_loss = generator_loss

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.generator_loss == "minimax":
            return -F.softplus(fake).mean()
        return F.softplus(-fake).mean()


class Wasserstein(Objective):
    """The Wasserstein critic (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN"): the critic
    maximises E[f(x)] - E[f(G(z))], the generator maximises E[f(G(z))]. The Lipschitz constraint
    comes from weight clipping (`model.weight_clip`) or a gradient penalty (regularizers)."""

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


class LeastSquares(Objective):
    """LSGAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks", eq. 2): D minimises
    1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2], G minimises 1/2 E[(D(G(z)) - c)^2]; the paper's
    0-1 coding a = 0, b = c = 1 is the default (a = -1, b = 1, c = 0 minimises Pearson chi^2)."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - self.b) ** 2).mean() + 0.5 * ((fake - self.a) ** 2).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake - self.c) ** 2).mean()


class Hinge(Objective):
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018, SN-GAN; Brock et al. 2019, BigGAN):
    D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G minimises -E[D(G(z))]."""

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()
