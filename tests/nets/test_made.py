"""MADE (Germain et al. 2015): output i depends on exactly the inputs before i in the order."""
from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from gen_runner.nets.made import MADE, autoregressive_order


@pytest.mark.parametrize("order", ["sequential", "reverse", "random"])
@pytest.mark.parametrize("layer", [0, 1])
def test_autoregressive_property_through_input_gradients(order: str, layer: int):
    """d output[j * D + i] / d x[k] is nonzero iff degree(k) < degree(i), for every parameter j;
    the context reaches every output."""
    torch.manual_seed(0)
    dim, multiplier, context_features = 5, 3, 2
    degrees = autoregressive_order(dim, order, layer=layer, seed=1)
    made = MADE(degrees, [16, 16], multiplier, context_features, activation="tanh", zero_last=False).double()
    x, context = torch.randn(dim, dtype=torch.float64), torch.randn(context_features, dtype=torch.float64)
    jac_x = jacobian(lambda v: made(v[None], context[None])[0], x).view(multiplier, dim, dim)
    jac_c = jacobian(lambda c: made(x[None], c[None])[0], context).view(multiplier, dim, context_features)
    allowed = degrees[None, :] < degrees[:, None]  # [output i, input k]
    for j in range(multiplier):
        assert (jac_x[j][~allowed] == 0).all()
        assert (jac_x[j][allowed] != 0).all()
    # Every output sees the context, the first in the order included (through degree-0 units).
    assert (jac_c.abs().sum(-1) > 0).all()


def test_orders():
    assert autoregressive_order(4, "sequential").tolist() == [1, 2, 3, 4]
    assert autoregressive_order(4, "reverse", layer=1).tolist() == [4, 3, 2, 1]
    random = autoregressive_order(6, "random", layer=2, seed=5)
    assert sorted(random.tolist()) == list(range(1, 7))
    assert torch.equal(random, autoregressive_order(6, "random", layer=2, seed=5))
    with pytest.raises(ValueError, match="unknown autoregressive order"):
        autoregressive_order(3, "zigzag")


def test_zero_last_starts_at_zero_and_context_is_required():
    made = MADE(autoregressive_order(3, "sequential"), [8], 2, context_features=1)
    assert torch.equal(made(torch.randn(4, 3), torch.randn(4, 1)), torch.zeros(4, 6))
    with pytest.raises(ValueError, match="give a context"):
        made(torch.randn(4, 3))
