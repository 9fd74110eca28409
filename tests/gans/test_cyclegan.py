"""CycleGAN: the history pool's contract, the losses by hand (LSGAN, cycle, identity), the learning
rate schedule, and train -> eval -> sample (three directions) through the CLI on digits2thick."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gen_runner.checkpoints import load_checkpoint
from gen_runner.errors import UserError
from gen_runner.gans.cyclegan import CycleGANModule, linear_decay
from gen_runner.gans.history import HistoryPool
from gen_runner.instantiate import build_datamodule
from helpers import FAST, read_metrics, run_cli, run_directory


# -- the history pool ---------------------------------------------------------------------------
def test_the_pool_returns_fakes_as_they_are_until_it_is_full_then_half_from_its_history():
    pool, g = HistoryPool((1, 1, 1), size=50), torch.Generator().manual_seed(0)
    filling = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool(filling[:30], g), filling[:30]) and torch.equal(pool(filling[30:], g), filling[30:])
    swapped, seen = 0, set(range(50))
    for step in range(400):  # fresh fakes 100, 101, ...: any other value came out of the history
        fakes = torch.arange(100.0 + 5 * step, 105.0 + 5 * step).view(5, 1, 1, 1)
        out = pool(fakes, g).flatten().tolist()
        for fake, got in zip(fakes.flatten().tolist(), out):
            if got != fake:
                assert got in seen  # a stored image, returned once and replaced by the fake
                seen.remove(got)
                swapped += 1
            seen.add(fake) if got != fake else None
    assert abs(swapped / 2000 - 0.5) < 0.03  # 2,000 draws: the binomial's s.e. is 0.011
    assert len(seen) == 50 and pool.count == 50


def test_a_pool_of_size_0_passes_the_fakes_through():
    fakes = torch.randn(4, 1, 2, 2)
    assert torch.equal(HistoryPool((1, 2, 2), size=0)(fakes), fakes)


# -- the losses by hand ---------------------------------------------------------------------------
DATA = {"kind": "unpaired", "input_shape": [1, 1, 2], "shape": [1, 1, 2], "num_levels": 3, "num_classes": 2}
A = torch.full((1, 1, 1, 2), 2, dtype=torch.uint8)  # level 2 of 3 -> 1.0 in model space
B = torch.zeros((1, 1, 1, 2), dtype=torch.uint8)  # -> -1.0


class Affine(nn.Module):
    def __init__(self, scale: float, shift: float):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return self.scale * x + self.shift


def make(g_ab: nn.Module, g_ba: nn.Module, **kwargs) -> CycleGANModule:
    """G = g_ab, F = g_ba, D_A = D_B = the identity (a 1x1 PatchGAN whose logit is the pixel)."""
    generators = iter([g_ab, g_ba])
    return CycleGANModule(generator=lambda input_shape, data_shape: next(generators),
                          discriminator=lambda input_shape, data_shape, conditional: Affine(1.0, 0.0),
                          data=DATA, **kwargs)


def test_the_losses_by_hand():
    model = make(Affine(0.5, 0.0), Affine(1.0, 0.1), pool_size=0)  # G(x) = x / 2, F(x) = x + 0.1
    batch = model.gan_batch((A, B, torch.tensor([1]), torch.tensor([0])))
    # a = 1, b = -1: G(a) = 0.5, F(b) = -0.9, F(G(a)) = 0.6, G(F(b)) = -0.45, G(b) = -0.5, F(a) = 1.1
    d = model.discriminator_loss(batch).terms
    assert d["train/d_loss_B"].item() == pytest.approx(0.5 * ((-1 - 1) ** 2 + 0.5**2))
    assert d["train/d_loss_A"].item() == pytest.approx(0.5 * ((1 - 1) ** 2 + 0.9**2))
    g = model.generator_loss(batch)
    assert g.terms["train/g_loss_AtoB"].item() == pytest.approx((0.5 - 1) ** 2)
    assert g.terms["train/g_loss_BtoA"].item() == pytest.approx((-0.9 - 1) ** 2)
    assert g.terms["train/g_cycle"].item() == pytest.approx(10 * (abs(0.6 - 1) + abs(-0.45 + 1)))
    assert g.terms["train/g_identity"].item() == pytest.approx(0.5 * 10 * (abs(-0.5 + 1) + abs(1.1 - 1)))


def test_identity_generators_have_zero_identity_and_cycle_losses():
    model = make(nn.Identity(), nn.Identity())
    g = model.generator_loss(model.gan_batch((A, B, torch.tensor([1]), torch.tensor([0]))))
    assert g.terms["train/g_identity"].item() == 0 and g.terms["train/g_cycle"].item() == 0


def test_the_ablation_drops_the_cycle_and_identity_terms_and_bad_weights_fail_in_one_line():
    model = make(Affine(0.5, 0), Affine(1, 0.1), cycle_weight=0)
    g = model.generator_loss(model.gan_batch((A, B, torch.tensor([1]), torch.tensor([0]))))
    assert set(g.terms) == {"train/g_loss_AtoB", "train/g_loss_BtoA"}  # the identity term is a fraction of lambda
    with pytest.raises(UserError, match="identity_weight=0"):
        CycleGANModule(lambda **kw: nn.Identity(), lambda **kw: nn.Identity(),
                       {**DATA, "shape": [3, 1, 2]})
    with pytest.raises(UserError, match="lr_decay_start"):
        make(nn.Identity(), nn.Identity(), lr_decay_start=1.5)
    with pytest.raises(UserError, match="unpaired"):
        CycleGANModule(lambda **kw: nn.Identity(), lambda **kw: nn.Identity(), {**DATA, "kind": "paired"})


def test_the_learning_rate_is_constant_then_decays_linearly_to_zero():
    assert [linear_decay(t, 10, 0.5) for t in range(11)] == pytest.approx([1] * 6 + [0.8, 0.6, 0.4, 0.2, 0])
    assert [linear_decay(t, 4, 1.0) for t in range(4)] == [1, 1, 1, 1]
    assert [linear_decay(t, 4, 0.0) for t in range(5)] == pytest.approx([1, 0.75, 0.5, 0.25, 0])


# -- the CLI --------------------------------------------------------------------------------------
TINY = ["experiment=cyclegan_digits2thick", "model.generator.base_channels=4", "model.generator.num_blocks=1",
        "model.discriminator.base_channels=4", "data.batch_size=8"]


def domain_b_classifier(tmp_path) -> str:
    """A 2-step classifier of digits2thick's domain-B training images, through the CLI."""
    dm = build_datamodule({"_target_": "gen_runner.data.datamodule.ThickDigitsDataModule", "size": 16}, 0)
    x, y = dm.splits["train"].b
    np.savez(tmp_path / "b.npz", x=x.numpy(), y=y.numpy())
    proc = run_cli("train", "model=classifier", "data=tensor_file", f"data.path={tmp_path / 'b.npz'}",
                   "data.num_levels=17", "trainer.max_steps=2", *FAST, cwd=tmp_path)
    return str(run_directory(proc, tmp_path) / "checkpoints" / "last.ckpt")


def test_train_eval_and_sample_through_the_cli(tmp_path):
    run = run_directory(run_cli("train", *TINY, "trainer.max_steps=3", *FAST, cwd=tmp_path), tmp_path)
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [3, 3]
    assert [o["param_groups"][0]["lr"] for o in ckpt["optimizer_states"]] == [0.0, 0.0]  # decayed to 0 at the end

    clf = domain_b_classifier(tmp_path)  # also stands in for domain A's (the code path, not the accuracy)
    proc = run_cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", "eval.features=classifier",
                   f"eval.features_ckpt={clf}", f"eval.features_ckpt_a={clf}", "eval.metrics=[fid,kid]",
                   cwd=tmp_path)
    metrics = read_metrics(run_directory(proc, tmp_path))
    for key in ("fid", "kid", "class_accuracy", "fid_BtoA", "kid_BtoA", "class_accuracy_BtoA", "cycle_l1_A",
                "cycle_l1_B"):
        assert np.isfinite(metrics[key]), key
    assert "l1" not in metrics and "psnr" not in metrics  # unpaired: no targets

    for direction, columns in (("AtoB", 2), ("BtoA", 2), ("cycle", 4)):
        proc = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "mode=translate", "input=split=test",
                       "num_samples=3", f"mode.direction={direction}", cwd=tmp_path)
        tiles = torch.load(run_directory(proc, tmp_path) / "samples" / "samples.pt")
        assert tiles.shape == (3 * columns, 1, 16, 16), direction
        if direction == "cycle":  # the error column is |a - F(G(a))|
            rows = tiles.view(3, 4, 1, 16, 16)
            assert torch.allclose(rows[:, 3], (rows[:, 0] - rows[:, 2]).abs())
    proc = run_cli("sample", f"ckpt_path={run}/checkpoints/last.ckpt", "mode=translate", "input=split=test",
                   "mode.direction=sideways", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "choose AtoB, BtoA or cycle" in proc.stderr
