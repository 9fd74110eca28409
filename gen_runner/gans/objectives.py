"""GAN objectives as small callables over discriminator logits.

Each objective has `d_loss(real_logits, fake_logits)` (minimised by the discriminator) and
`g_loss(fake_logits)` (minimised by the generator); both return scalars (means over the batch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["Objective", "StandardGAN"]


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
