"""Regularizers composable with any GAN objective.

Loss terms (`model.regularizers=[...]`) are callables `term(gan, real, fake, critic) -> scalar` with
an attribute `net` naming the network whose loss they join ("discriminator" or "generator");
`real` and `fake` are the inputs the discriminator sees (packed, for PacGAN), and `critic` is D's
logit as a function of such input in this step (a conditional D's at the batch's labels; by
default `gan.critic`).
Reparametrizations and constraints: `spectral_norm` (Miyato et al. 2018) wraps the
discriminator's layers at construction; weight clipping (Arjovsky et al. 2017) and gradient-norm
clipping are options of the GAN module (`model.weight_clip`, `model.grad_clip`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["GradientPenalty", "R1", "OrthogonalRegularization", "apply_spectral_norm", "gradient_norms"]


def gradient_norms(discriminate, x: torch.Tensor) -> torch.Tensor:
    """||d D(x_i) / d x_i||_2 for every example i, keeping the graph (for a penalty's backward)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminate(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)


class GradientPenalty:
    """WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", eq. 3):
    weight * E[(||grad D(x_hat)||_2 - target)^2] at x_hat = eps x + (1 - eps) G(z), with one
    eps ~ U[0, 1] per example (not per pixel) and the norm taken over each example's input."""

    net = "discriminator"

    def __init__(self, weight: float = 10.0, target: float = 1.0):
        self.weight, self.target = weight, target

    def __call__(self, gan, real: torch.Tensor, fake: torch.Tensor, critic=None) -> torch.Tensor:
        eps = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
        x_hat = eps * real.detach() + (1 - eps) * fake.detach()
        return self.weight * ((gradient_norms(critic or gan.critic, x_hat) - self.target) ** 2).mean()


class R1:
    """R1 (Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
    Converge?"): gamma / 2 * E_real[||grad D(x)||^2], on real data only."""

    net = "discriminator"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def __call__(self, gan, real: torch.Tensor, fake: torch.Tensor, critic=None) -> torch.Tensor:
        return self.gamma / 2 * (gradient_norms(critic or gan.critic, real) ** 2).mean()


class OrthogonalRegularization:
    """BigGAN's orthogonal regularization (Brock et al. 2019, eq. 3): beta * ||W^T W * (1 - I)||_F^2
    summed over the weight matrices of `net` (conv kernels flattened to [out, in * k * k]); it
    penalises only the off-diagonal, leaving the filters' norms free. BigGAN: generator, 1e-4.
    A spectral-normed layer's stored weight W is penalised, not W / sigma(W) (the authors' code:
    every parameter of two or more axes but the shared embedding; embeddings are skipped here)."""

    def __init__(self, beta: float = 1e-4, net: str = "generator"):
        if net not in ("generator", "discriminator"):
            raise ValueError(f"OrthogonalRegularization(net={net!r}): choose generator or discriminator")
        self.beta, self.net = beta, net

    def __call__(self, gan, real: torch.Tensor, fake: torch.Tensor, critic=None) -> torch.Tensor:
        total = real.new_zeros(())
        for module in getattr(gan, self.net).modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                stored = parametrize.is_parametrized(module, "weight")
                w = (module.parametrizations.weight.original if stored else module.weight).flatten(1)
                gram = w @ w.t()
                total = total + (gram * (1 - torch.eye(len(gram), device=w.device))).pow(2).sum()
        return self.beta * total


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every linear and convolutional layer: each
    weight is divided by its largest singular value, estimated by power iteration."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module
