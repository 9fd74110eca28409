"""Every transform against the contract: invertibility, log-dets that are opposite and match autograd.

One registry, CASES, holds every transform of the library (each univariate transformer inside a
coupling and a MADE layer); the families' own files test what is particular to them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import torch
from layers import autoregressive, coupling, glow_step, initialized, perturb, spread
from torch import nn

from gen_runner.flows.build import multiscale_flow
from gen_runner.flows.multiscale import MultiScale
from gen_runner.flows.transforms.autoregressive import MaskedAutoregressive
from gen_runner.flows.transforms.base import Compose, Inverse, Transform
from gen_runner.flows.transforms.coupling import (
    Coupling,
    TanhLogScale,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from gen_runner.flows.transforms.elementwise import Logit, Scale, SoftClip
from gen_runner.flows.transforms.linear import InvertibleConv1x1, Permutation
from gen_runner.flows.transforms.normalization import ActNorm, BatchNorm
from gen_runner.flows.transforms.reshape import Flatten, Squeeze
from gen_runner.flows.transforms.sigmoidal import DeepSigmoidal
from gen_runner.flows.transforms.sos import SumOfSquares
from gen_runner.flows.transforms.splines import CubicSpline, RationalQuadraticSpline
from gen_runner.flows.transforms.umnn import UnconstrainedMonotonic
from gen_runner.flows.transforms.univariate import Additive, Affine
from gen_runner.nets.made import MADE, autoregressive_order
from gen_runner.nets.mlp import MLP
from gen_runner.nets.resnet import ResNet


def mlp(dim: int, out: int) -> MLP:
    return MLP(dim, out, hidden=(16,), zero_last=True)


def resnet(channels: int, out: int) -> ResNet:
    return ResNet(channels, out, hidden_channels=8, num_blocks=1)


def affine(mask: torch.Tensor, conditioner: nn.Module, scale: str = "exp") -> Coupling:
    """An affine coupling; scale "tanh" is RealNVP's: exp scale with the log-scale bounded in the conditioner."""
    if scale == "tanh":
        return Coupling(
            mask,
            nn.Sequential(conditioner, TanhLogScale(mask.shape[0] if mask.dim() > 1 else int((~mask).sum()))),
            Affine(),
        )
    return Coupling(mask, conditioner, Affine(scale))


def batch_norm(num_features: int) -> BatchNorm:
    """Batch norm with non-trivial running statistics."""
    bn = BatchNorm(num_features)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    return bn


class ContextConditioner(nn.Module):
    """Ignores the (all-masked) input and reads the context: a learned prior on a split."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = resnet(channels, 2 * channels)

    def forward(self, masked: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(context)


def multiscale(split_prior: bool) -> MultiScale:
    """[2, 4, 4] -> level 1 -> [8, 2, 2], split to 4 + 4 channels -> level 2 on [4, 2, 2]."""
    first = Compose(
        affine(checkerboard_mask(2, 4, 4, 0), resnet(2, 4), "tanh"),
        Squeeze(),
        affine(channel_mask(8, 2, 2, 1), resnet(8, 16)),
    )
    last = Compose(affine(checkerboard_mask(4, 2, 2, 1), resnet(4, 8), "sigmoid"), batch_norm(4))
    if not split_prior:
        return MultiScale([first, last], (2, 4, 4))
    prior = affine(torch.zeros(4, 2, 2, dtype=torch.bool), ContextConditioner(4))
    return MultiScale([first, last], (2, 4, 4), split_transforms=[prior])


def unit(shape: tuple[int, ...]) -> torch.Tensor:
    return 0.02 + 0.96 * torch.rand(shape)


CASES: dict[str, tuple[Callable[[], Transform], tuple[int, ...], Callable[[tuple[int, ...]], torch.Tensor]]] = {
    "affine_vector": (lambda: affine(alternating_mask(4, 0), mlp(2, 4), "tanh"), (4,), torch.randn),
    "affine_vector_exp": (lambda: affine(alternating_mask(5, 1), mlp(2, 6)), (5,), torch.randn),
    "affine_vector_sigmoid": (lambda: affine(alternating_mask(4, 1), mlp(2, 4), "sigmoid"), (4,), torch.randn),
    "additive_vector": (lambda: Coupling(alternating_mask(4, 1), mlp(2, 2), Additive()), (4,), torch.randn),
    "affine_checkerboard": (
        lambda: affine(checkerboard_mask(1, 4, 4, 1), resnet(1, 2), "tanh"),
        (1, 4, 4),
        torch.randn,
    ),
    "affine_channel": (lambda: affine(channel_mask(2, 4, 4, 0), resnet(2, 4)), (2, 4, 4), torch.randn),
    "squeeze": (Squeeze, (2, 4, 4), torch.randn),
    "batch_norm_vector": (lambda: batch_norm(4), (4,), torch.randn),
    "batch_norm_image": (lambda: batch_norm(2), (2, 4, 4), torch.randn),
    "logit": (lambda: Logit(0.05), (2, 4, 4), unit),
    "multiscale": (lambda: multiscale(split_prior=False), (2, 4, 4), torch.randn),
    "multiscale_split_prior": (lambda: multiscale(split_prior=True), (2, 4, 4), torch.randn),
    # NICE, Glow
    "nice_scale": (lambda: Scale(4), (4,), torch.randn),
    "actnorm_vector": (lambda: initialized(ActNorm(4), (4,)), (4,), torch.randn),
    "actnorm_image": (lambda: initialized(ActNorm(2), (2, 4, 4)), (2, 4, 4), torch.randn),
    "conv1x1_image": (lambda: InvertibleConv1x1(3), (3, 4, 4), torch.randn),
    "conv1x1_lu_image": (lambda: InvertibleConv1x1(3, lu=True), (3, 4, 4), torch.randn),
    "conv1x1_lu_vector": (lambda: InvertibleConv1x1(4, lu=True), (4,), torch.randn),
    "permutation_reverse": (lambda: Permutation.reverse(3), (3, 2, 2), torch.randn),
    "permutation_shuffle": (lambda: Permutation.shuffle(5, seed=0), (5,), torch.randn),
    "glow_step": (lambda: initialized(glow_step(4, 2, 2), (4, 2, 2)), (4, 2, 2), torch.randn),
    "glow_multiscale": (
        lambda: initialized(multiscale_flow((2, 4, 4), num_scales=2, steps=2, hidden_channels=4, normalization=ActNorm,
                                            permutation=partial(InvertibleConv1x1, lu=True)), (2, 4, 4)),
        (2, 4, 4),
        torch.randn,
    ),
    "nsf_multiscale": (
        lambda: initialized(multiscale_flow((1, 4, 4), RationalQuadraticSpline, num_scales=2, steps=1,
                                            hidden_channels=4, conditioner=partial(ResNet, num_blocks=1),
                                            normalization=ActNorm, permutation=Permutation.shuffle), (1, 4, 4)),
        (1, 4, 4),
        torch.randn,
    ),
    "flatten": (lambda: Flatten((2, 3, 3)), (2, 3, 3), torch.randn),
    "softclip": (lambda: SoftClip(1.5), (4,), spread),
    # Autoregressive: MAF's layer and IAF's (its inverse).
    "maf_affine": (lambda: autoregressive(Affine()), (3,), torch.randn),
    "maf_affine_softclip": (lambda: autoregressive(Affine("softclip")), (3,), torch.randn),
    "iaf_affine": (lambda: Inverse(autoregressive(Affine())), (3,), torch.randn),
    "maf_random_order": (
        lambda: MaskedAutoregressive(MADE(autoregressive_order(5, "random", seed=3), [16, 16], 2), Affine()),
        (5,),
        torch.randn,
    ),
    # Splines (bound 2, a third of the inputs in the identity tails) and the numerically inverted
    # transformers, each in a coupling and an autoregressive layer.
    **{f"{name}_{kind}": (lambda g=g, layer=layer: layer(g()), (4,) if kind == "coupling" else (3,), sample)
       for name, g, sample in [
           ("rq_spline", lambda: RationalQuadraticSpline(bound=2.0), spread),
           ("cubic_spline", lambda: CubicSpline(bound=2.0), spread),
           ("dsf", lambda: DeepSigmoidal(hidden=4), torch.randn),
           ("sos", lambda: SumOfSquares(polynomials=3, degree=3), torch.randn),
           ("umnn", lambda: UnconstrainedMonotonic(embedding=4, hidden=(16, 16), steps=20), torch.randn),
       ]
       for kind, layer in [("coupling", coupling), ("autoregressive", autoregressive)]},
    "compose": (
        lambda: Compose(
            Logit(0.01),
            affine(alternating_mask(4, 0), mlp(2, 4)),
            batch_norm(4),
            affine(alternating_mask(4, 1), mlp(2, 4)),
        ),
        (4,),
        unit,
    ),
}


# Parameter noise per case where 0.1 is too much: it makes a multi-level Glow's sigmoid scales
# vanish (an ill-conditioned map no trained model has), so its inverse overflows.
NOISE = {"glow_multiscale": 0.02}


def build(name: str, dtype: torch.dtype, batch: int) -> tuple[Transform, torch.Tensor, tuple[int, ...]]:
    """The transform in eval mode with randomly perturbed parameters (so zero-initialised
    conditioners are not the identity), and an input batch."""
    torch.manual_seed(0)
    factory, shape, sample = CASES[name]
    transform = perturb(factory().to(dtype).eval(), NOISE.get(name, 0.1))
    return transform, sample((batch, *shape)).to(dtype), shape


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_round_trip(name: str, dtype: torch.dtype, atol: float):
    transform, x, shape = build(name, dtype, batch=8)
    y, forward_logabsdet = transform(x)
    x_again, inverse_logabsdet = transform.inverse(y)
    assert y.shape == (8, *transform.output_shape(shape))
    assert x_again.shape == x.shape and forward_logabsdet.shape == inverse_logabsdet.shape == (8,)
    for t in (y, forward_logabsdet, x_again, inverse_logabsdet):
        assert torch.isfinite(t).all()
    torch.testing.assert_close(x_again, x, atol=atol, rtol=0)
    torch.testing.assert_close(forward_logabsdet, -inverse_logabsdet, atol=100 * atol, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_logabsdet_matches_autograd(name: str, jacobian_logabsdet):
    transform, x, _ = build(name, torch.float64, batch=2)
    y, forward_logabsdet = transform(x)
    torch.testing.assert_close(forward_logabsdet, jacobian_logabsdet(lambda v: transform(v)[0], x))
    _, inverse_logabsdet = transform.inverse(y)
    torch.testing.assert_close(inverse_logabsdet, jacobian_logabsdet(lambda v: transform.inverse(v)[0], y))


def test_squeeze_layout():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))
    with pytest.raises(ValueError, match="must be even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))


def test_coupling_keeps_conditioning_half():
    transform, x, _ = build("affine_checkerboard", torch.float64, batch=3)
    y, _ = transform(x)
    mask = transform.mask
    torch.testing.assert_close(y[:, mask], x[:, mask], atol=0, rtol=0)
    assert not torch.allclose(y[:, ~mask], x[:, ~mask])


def test_zero_initialised_coupling_is_identity():
    coupling = affine(channel_mask(2, 4, 4, 1), resnet(2, 4)).eval()
    x = torch.randn(3, 2, 4, 4)
    y, logabsdet = coupling(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(logabsdet, torch.zeros(3))


def test_batch_norm_training_uses_batch_statistics(jacobian_logabsdet):
    """In training the log-det treats the batch statistics as constants: with momentum 1 the running
    averages become those statistics, and the eval-mode map (checked against autograd) must agree."""
    torch.manual_seed(0)
    bn = BatchNorm(3, momentum=1.0).double()
    with torch.no_grad():
        bn.log_gamma.normal_(0, 0.3)
        bn.beta.normal_()
    x = 1.0 + 2.0 * torch.randn(16, 3, 2, 2, dtype=torch.float64)
    y, logabsdet = bn.train()(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), bn.beta.detach())
    torch.testing.assert_close(bn.running_mean, x.mean((0, 2, 3)))
    bn.eval()
    y_eval, logabsdet_eval = bn(x)
    torch.testing.assert_close(y_eval, y)
    torch.testing.assert_close(logabsdet_eval, logabsdet)
    torch.testing.assert_close(logabsdet[:2], jacobian_logabsdet(lambda v: bn(v)[0], x[:2]))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="even number of channels"):
        channel_mask(3, 4, 4, 0)
    with pytest.raises(ValueError, match="unknown affine scale"):
        Affine("softplus")
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.5)
