"""BigGAN (Brock et al. 2019): conditional BatchNorm and the hierarchical z, the projection D, SAGAN's
self-attention, orthogonal regularization by hand, spectral norm in both nets, and train -> sample
-> eval through the CLI on digits padded to 16x16."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gen_runner.errors import UserError
from gen_runner.gans.regularizers import OrthogonalRegularization
from gen_runner.nets.attention import SelfAttention
from gen_runner.nets.biggan import BigGANDiscriminator, BigGANGenerator, ConditionalBatchNorm
from helpers import FAST, read_metrics, run_cli, run_directory

TINY = dict(ch=2, attention=None)


def _generator(shape=(1, 8, 8), latent_dim=8, **kwargs):
    torch.manual_seed(0)
    return BigGANGenerator(latent_dim, shape, num_classes=10, **(TINY | kwargs))


# -- conditional BatchNorm and the hierarchical z -------------------------------------------------------------
def test_conditional_batch_norm_by_hand():
    """Running stats mean 1, var 4 (eval mode): x -> (x - 1) / 2 * (1 + W_g c) + W_b c."""
    gain, bias = nn.Linear(2, 3, bias=False), nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        gain.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        bias.weight.copy_(torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]]))
    cbn = ConditionalBatchNorm(3, gain, bias).eval()
    cbn.bn.running_mean.fill_(1.0)
    cbn.bn.running_var.fill_(4.0 - cbn.bn.eps)
    x, c = torch.full((2, 3, 1, 1), 3.0), torch.tensor([[1.0, 0.0], [0.5, -1.0]])
    # normalised x = 1; gains 1 + [1, 0, 1] and 1 + [0.5, -1, -0.5]; biases [0, 1, 0] and [-2, 0.5, 0]
    expected = torch.tensor([[2.0, 2.0, 2.0], [-0.5, 0.5, 0.5]])
    torch.testing.assert_close(cbn(x, c).flatten(1), expected)


@pytest.mark.parametrize("options", [{}, {"shared_dim": None, "hierarchical": False}])
def test_two_classes_give_two_images_from_the_same_z(options):
    g = _generator(**options).eval()
    z = torch.randn(1, 8).expand(2, -1)
    x = g(z, torch.tensor([3, 7]))
    assert x.shape == (2, 1, 8, 8) and not torch.allclose(x[0], x[1])
    torch.testing.assert_close(g(z, torch.tensor([3, 3]))[1], x[0])  # the same class: the same image


def test_every_chunk_of_z_reaches_the_image():
    """16x16: z = [first layer | block 1 | block 2] chunks of 4; each one alone changes the output."""
    g = _generator((1, 16, 16), latent_dim=12).eval()
    assert g.chunk == 4 and len(g.blocks) == 2
    z, y = torch.randn(1, 12), torch.tensor([1])
    for part in range(3):
        moved = z.clone()
        moved[:, 4 * part : 4 * part + 4] += 1.0
        assert not torch.allclose(g(moved, y), g(z, y)), part
    with pytest.raises(UserError, match="latent_dim=10: the hierarchical z splits into 3 equal chunks"):
        _generator((1, 16, 16), latent_dim=10)


@pytest.mark.parametrize("side, g_widths, d_widths", [
    (8, [8], [8, 8, 8, 8]), (32, [8, 8, 8], [8, 8, 8, 8]),  # the paper's CIFAR-10 widths: 4 ch everywhere
    (128, [32, 16, 8, 4, 2], [2, 4, 8, 16, 32, 32]),  # the paper's 128x128: G 16, 8, 4, 2, 1 ch; D 1 ... 16, 16 ch
])
def test_widths_follow_the_papers_architectures(side, g_widths, d_widths):
    g = BigGANGenerator(12 if side < 128 else 120, (3, side, side), 10, ch=2, attention=None)
    d = BigGANDiscriminator((3, side, side), 10, ch=2, attention=None)
    assert [b.conv1.out_channels for b in g.blocks] == g_widths
    assert [b.conv1.out_channels for b in d.blocks] == d_widths
    assert g(torch.randn(2, g.chunk * (len(g.blocks) + 1)), torch.tensor([0, 1])).shape == (2, 3, side, side)


# -- the discriminator -------------------------------------------------------------------------------------
def test_projection_d_depends_on_the_class_by_its_embedding():
    torch.manual_seed(0)
    d = BigGANDiscriminator((1, 8, 8), 10, **TINY).eval()
    x = torch.randn(1, 1, 8, 8).expand(2, -1, -1, -1)
    out = d(x, torch.tensor([2, 5]))
    assert out.shape == (2,) and out[0] != out[1]
    h = d.features(x)  # psi(h) + <V_y, h>, V spectral-normed
    expected = d.linear(h).flatten() + (d.embed.weight[[2, 5]] * h).sum(1)
    torch.testing.assert_close(out, expected)


def test_spectral_norm_on_every_layer_of_both_nets_but_gs_embeddings():
    g, d = _generator(attention=8), BigGANDiscriminator((1, 8, 8), 10, ch=2, attention=4)
    for net in (g, d):
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert parametrize.is_parametrized(d.embed, "weight") and not parametrize.is_parametrized(g.shared, "weight")
    off = _generator(spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())


# -- self-attention ------------------------------------------------------------------------------------------
def test_self_attention_starts_as_the_identity_then_looks_across_the_map():
    torch.manual_seed(0)
    attention = SelfAttention(16)
    assert attention.gamma.item() == 0.0
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(attention(x), x)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    far = x.clone()
    far[:, :, 3, 3] += 1.0  # one corner changes
    assert not torch.allclose(attention(far)[:, :, 0, 0], attention(x)[:, :, 0, 0])  # the other corner sees it
    assert attention.theta.out_channels == attention.phi.out_channels == 2 and attention.g.out_channels == 8


def test_attention_where_the_nets_have_no_such_side_is_a_one_line_error():
    with pytest.raises(UserError, match=r"model.discriminator.attention=8: its blocks output sides \[2, 4\]"):
        BigGANDiscriminator((1, 8, 8), 10, ch=2, attention=8)
    with pytest.raises(UserError, match="needs images of side"):
        _generator((1, 6, 6))


# -- orthogonal regularization -------------------------------------------------------------------------------
def test_orthogonal_regularization_by_hand_on_the_stored_weight():
    """beta ||W W^T * (1 - I)||_F^2 of the stored W of a spectral-normed layer; its gradient
    4 beta (W W^T * (1 - I)) W."""
    layer = spectral_norm(nn.Linear(3, 3, bias=False))
    w = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 2.0]])
    with torch.no_grad():
        layer.parametrizations.weight.original.copy_(w)
    gan = type("Gan", (), {"generator": nn.Sequential(layer)})()
    penalty = OrthogonalRegularization(beta=0.5)(gan, torch.zeros(1), torch.zeros(1))
    assert penalty.item() == pytest.approx(0.5 * 2)  # rows 0 and 1: dot product 1, twice off the diagonal
    (grad,) = torch.autograd.grad(penalty, layer.parametrizations.weight.original)
    off = (w @ w.T) * (1 - torch.eye(3))
    torch.testing.assert_close(grad, 4 * 0.5 * off @ w)


def test_orthogonal_regularization_reaches_gs_layers_not_its_shared_embedding():
    g = _generator(attention=8)
    gan = type("Gan", (), {"generator": g})()
    penalty = OrthogonalRegularization()(gan, torch.zeros(1), torch.zeros(1))
    stored = [m.parametrizations.weight.original for m in g.modules() if parametrize.is_parametrized(m, "weight")]
    grads = torch.autograd.grad(penalty, [*stored, g.shared.weight], allow_unused=True)
    assert all(gr is not None for gr in grads[:-1]) and grads[-1] is None


# -- through the CLI -----------------------------------------------------------------------------------------
CLI_SMALL = ["experiment=biggan_digits", "data.batch_size=16", "trainer.max_steps=2", "model.latent_dim=9",
             "model.generator.ch=2", "model.discriminator.ch=2", *FAST]


def test_train_sample_and_eval_through_the_cli(tmp_path):
    classifier = run_directory(run_cli("train", "model=classifier", "data=digits", "data.size=16", "data.fit=pad",
                                       "trainer.max_steps=2", *FAST,
                                       cwd=tmp_path), tmp_path) / "checkpoints/last.ckpt"
    run = run_directory(run_cli("train", *CLI_SMALL, cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert {"train/d_loss", "train/g_loss", "train/g_OrthogonalRegularization"} <= metrics.keys()
    ckpt = run / "checkpoints/last.ckpt"

    out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", "per_class=2", "truncation=0.5", cwd=tmp_path), tmp_path)
    assert np.load(out / "samples/samples.npy").shape == (20, 1, 16, 16)  # digits padded to 16x16
    assert np.load(out / "samples/labels.npy").tolist() == [c for c in range(10) for _ in range(2)]
    for mode in ("interpolate", "arithmetic"):
        run_cli("sample", f"ckpt_path={ckpt}", f"mode={mode}", cwd=tmp_path)

    scores = read_metrics(run_directory(run_cli(
        "eval", f"ckpt_path={ckpt}", "eval.features=classifier", f"eval.features_ckpt={classifier}",
        "eval.num_samples=100", "eval.metrics=[fid,prdc]", f"eval.cache_dir={tmp_path / 'cache'}",
        "truncation=0.5", cwd=tmp_path), tmp_path))
    assert scores["protocol"]["weights"] == "ema"  # the paper samples from G's moving average
    assert 0 <= scores["class_accuracy"] <= 1 and scores["fid"] > 0 and 0 <= scores["precision"] <= 1
    assert scores["protocol"]["truncation"] == 0.5


def test_model_spectral_norm_is_refused_in_one_line(tmp_path):
    proc = run_cli("train", *CLI_SMALL, "model.spectral_norm=true", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "BigGAN's nets apply spectral norm themselves" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
