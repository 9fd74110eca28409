"""ProGAN (Karras et al. 2018): the growing nets' fade-in, the schedule, the real images' blend, the
drift term, an exact resume mid-fade (with a new phase's optimizer reset), and train -> eval ->
sample via the CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import FAST, read_metrics, run_cli, run_directory
from test_train import read_losses
from gen_runner.checkpoints import load_checkpoint
from gen_runner.errors import UserError
from gen_runner.gans.growing import GrowingSchedule, Phase
from gen_runner.gans.progan import ProGAN
from gen_runner.gans.regularizers import GradientPenalty
from gen_runner.gans.objectives import Wasserstein
from gen_runner.nets.progan import ProGANDiscriminator, ProGANGenerator
from gen_runner.tasks.train import train

SHAPE = (1, 16, 16)
SMALL = ["model.latent_dim=16", "model.generator.max_channels=8", "model.discriminator.max_channels=8"]


def nets():
    torch.manual_seed(0)
    return (ProGANGenerator(16, SHAPE, max_channels=8), ProGANDiscriminator(SHAPE, max_channels=8))


def test_at_alpha_0_the_grown_generator_is_the_previous_resolution_upsampled():
    g, _ = nets()
    z = torch.randn(5, 16)
    new, old = g(z, 16, alpha=0.0), g(z, 8)
    assert new.shape == (5, 1, 16, 16) and old.shape == (5, 1, 8, 8)
    torch.testing.assert_close(new, old.repeat_interleave(2, 2).repeat_interleave(2, 3), rtol=0, atol=0)
    halfway = g(z, 16, alpha=0.5)
    torch.testing.assert_close(halfway, 0.5 * new + 0.5 * g(z, 16), rtol=1e-6, atol=1e-6)


def test_at_alpha_0_the_grown_discriminator_judges_the_downsampled_image():
    _, d = nets()
    x = torch.randn(6, *SHAPE)
    torch.testing.assert_close(d(x, alpha=0.0), d(F.avg_pool2d(x, 2)), rtol=0, atol=0)
    assert d(x[:, :, :4, :4]).shape == (6,)


def test_at_alpha_1_the_new_block_is_fully_in():
    g, d = nets()
    z, x = torch.randn(5, 16), torch.randn(5, *SHAPE)
    before_g, before_d = g(z, 16, alpha=1.0), d(x, alpha=1.0)
    with torch.no_grad():  # the old resolution's toRGB / fromRGB no longer matter
        g.to_rgb[1].weight.normal_()
        d.from_rgb[1][0].weight.normal_()
    torch.testing.assert_close(g(z, 16, alpha=1.0), before_g, rtol=0, atol=0)
    torch.testing.assert_close(d(x, alpha=1.0), before_d, rtol=0, atol=0)
    assert g(z, 16, alpha=0.5).ne(before_g).any()  # ... but they do in a fade


def test_all_blocks_exist_from_the_start_with_the_papers_channel_counts():
    g = ProGANGenerator(512, (3, 1024, 1024))
    assert [g.channels(r) for r in g.resolutions] == [512, 512, 512, 512, 256, 128, 64, 32, 16]  # Table 2
    assert len(g.blocks) == len(g.to_rgb) == 9
    assert round(sum(p.numel() for p in g.parameters()) / 1e5) == 231  # the paper's 23.1M (Table 2)
    d = ProGANDiscriminator((1, 32, 32), max_channels=8)
    assert len(d.blocks) == len(d.from_rgb) == 4 and {p.shape[0] for p in d.from_rgb.parameters()} == {8}
    with pytest.raises(ValueError, match="4 \\* 2\\^k"):
        ProGANGenerator(8, (1, 28, 28))


def test_the_schedule_stabilises_then_fades_in_each_resolution():
    s = GrowingSchedule(16, fade_images=100, stable_images=50, batch_size=16, batch_sizes={16: 4})
    table = {0: Phase(0, 4, 1.0, 16), 49: Phase(0, 4, 1.0, 16),
             50: Phase(1, 8, 0.0, 16), 75: Phase(1, 8, 0.25, 16), 149: Phase(1, 8, 0.99, 16),
             150: Phase(2, 8, 1.0, 16), 199: Phase(2, 8, 1.0, 16),
             200: Phase(3, 16, 0.0, 4), 290: Phase(3, 16, 0.9, 4),
             300: Phase(4, 16, 1.0, 4), 10**9: Phase(4, 16, 1.0, 4)}
    assert {n: s.phase(n) for n in table} == table
    assert s.growth_images == 300 and s.phase(75).fading and not s.phase(150).fading
    fixed = GrowingSchedule(16, start_resolution=16)  # no growing: the full network from the start
    assert fixed.phase(0) == fixed.phase(10**7) == Phase(0, 16, 1.0, 16)
    with pytest.raises(UserError, match="data.size"):
        GrowingSchedule(12)
    with pytest.raises(UserError, match="batch_sizes has resolution 32"):
        GrowingSchedule(16, batch_sizes={32: 2})


def module(data_batch=8, **schedule):
    g, d = nets()
    return ProGAN(generator=lambda **kw: g, discriminator=lambda **kw: d, objective=Wasserstein(),
                  data={"shape": SHAPE, "num_levels": 256, "batch_size": data_batch}, latent_dim=16,
                  regularizers=[GradientPenalty()], schedule=schedule)


def test_real_images_are_downsampled_and_blended_across_a_fade():
    gan = module(fade_images=100, stable_images=50)
    x = torch.randn(4, *SHAPE)
    at8 = F.avg_pool2d(x, 2)
    torch.testing.assert_close(gan.real_images(x, Phase(0, 4, 1.0, 8)), F.avg_pool2d(x, 4))
    torch.testing.assert_close(gan.real_images(x, Phase(2, 8, 1.0, 8)), at8)
    coarse = F.avg_pool2d(at8, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(gan.real_images(x, Phase(1, 8, 0.0, 8)), coarse)
    torch.testing.assert_close(gan.real_images(x, Phase(1, 8, 0.3, 8)), 0.3 * at8 + 0.7 * coarse)
    # generate() is at the phase reached (images_shown), upsampled to the data's side.
    gan.images_shown.fill_(0)
    out = gan.generate(torch.randn(3, 16))
    assert out.shape == (3, *SHAPE) and torch.equal(out[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3),
                                                    out)


def test_drift_term_and_bad_batch_sizes():
    gan = module()
    batch = gan.gan_batch([torch.randint(0, 256, (8, *SHAPE))])
    losses = gan.discriminator_loss(batch)
    real_scores = gan.critic(batch.real)
    torch.testing.assert_close(losses.terms["train/d_drift"], 0.001 * (real_scores**2).mean())
    assert set(losses.terms) == {"train/d_loss", "train/d_drift", "train/d_GradientPenalty"}
    assert batch.real.shape == (8, 1, 4, 4)
    with pytest.raises(UserError, match="data.batch_size=32"):
        module(data_batch=8, batch_sizes={8: 32})
    with pytest.raises(UserError, match="square images"):
        ProGAN(generator=None, discriminator=None, objective=Wasserstein(), data={"shape": (2,), "batch_size": 4})


SCHEDULE = ["model.schedule.stable_images=32", "model.schedule.fade_images=64", "model.schedule.batch_sizes={8: 6}"]


def test_resume_in_the_middle_of_a_fade_equals_a_straight_run(make_config):
    """4 steps of 8 at 4x4, then 8x8 fades in over 64 images with 6 a step: resume after step 7 (alpha 0.28)."""
    common = ["model=progan", *SMALL, *SCHEDULE, "data=digits", "data.batch_size=8", "logger=csv", *FAST, "seed=3"]
    full = make_config("train", *common, "trainer.max_steps=14")
    train(full)
    first = make_config("train", *common, "trainer.max_steps=7")
    train(first)
    middle = load_checkpoint(f"{first.paths.output_dir}/checkpoints/last.ckpt")
    assert middle["state_dict"]["images_shown"] == 32 + 3 * 6  # 18 of the fade's 64 images
    # The fade began after step 4: both Adams were reset then (the official code), so they count 3 steps.
    assert {int(p["step"]) for state in middle["optimizer_states"] for p in state["state"].values()} == {3}
    second = make_config("train", *common, "trainer.max_steps=14",
                         f"ckpt_path={first.paths.output_dir}/checkpoints/last.ckpt")
    train(second)

    a = load_checkpoint(f"{full.paths.output_dir}/checkpoints/last.ckpt")
    b = load_checkpoint(f"{second.paths.output_dir}/checkpoints/last.ckpt")
    assert a["state_dict"]["images_shown"] == b["state_dict"]["images_shown"] == 32 + 10 * 6
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    straight = read_losses(full.paths.output_dir)
    resumed = read_losses(first.paths.output_dir) | read_losses(second.paths.output_dir)
    assert sorted(resumed) == sorted(straight) == list(range(14))
    for step, losses in straight.items():
        assert resumed[step] == losses, f"step {step}"
    assert [straight[s]["train/resolution"] for s in (3, 4)] == [4, 8]
    assert straight[6]["train/alpha"] == pytest.approx(12 / 64) and straight[7]["train/alpha"] == pytest.approx(18 / 64)


def test_progan_trains_evals_and_samples_through_the_cli(tmp_path):
    run = run_directory(run_cli("train", "model=progan", *SMALL, *SCHEDULE, "data=digits", "data.batch_size=8",
                                "trainer.max_steps=6", "callbacks=minimal", cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert metrics["train/resolution"] == 8 and 0 < metrics["train/alpha"] < 1
    ckpt = run / "checkpoints/last.ckpt"
    for mode, count in (("samples", 9), ("interpolate", 9 * 8), ("arithmetic", None)):
        out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", f"mode={mode}", "num_samples=9", cwd=tmp_path),
                            tmp_path)
        samples = np.load(out / "samples/samples.npy")
        assert samples.shape[1:] == (1, 8, 8) and samples.shape[0] == (count or samples.shape[0])
    classifier = run_directory(run_cli("train", "model=classifier", "data=digits", "trainer.max_steps=2",
                                       "callbacks=minimal", cwd=tmp_path), tmp_path) / "checkpoints/last.ckpt"
    out = run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.features=classifier",
                                f"eval.features_ckpt={classifier}", "eval.num_samples=100", "eval.metrics=[fid]",
                                f"eval.cache_dir={tmp_path / 'cache'}", cwd=tmp_path), tmp_path)
    assert read_metrics(out)["fid"] > 0
