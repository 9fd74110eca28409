"""StyleGAN / StyleGAN2 (gen_runner/gans/stylegan.py, gen_runner/nets/stylegan.py): truncation,
style mixing, noise inputs, demodulation, the mean w, the mapping network's learning rate, the
sample modes' grids, and train -> eval -> sample in every mode through the CLI for both versions."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from gen_runner.capabilities import SampleRequest
from gen_runner.errors import UserError
from gen_runner.gans.objectives import StandardGAN
from gen_runner.gans.stylegan import StyleGAN
from gen_runner.nets.stylegan import (ModulatedConv2d, StyleGenerator, discriminator, mix_styles, style_groups,
                                      truncate_styles)
from helpers import read_metrics, run_cli, run_directory

SMALL = dict(w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def _model(version: int = 1, side: int = 8, **kwargs) -> StyleGAN:
    torch.manual_seed(0)
    return StyleGAN(functools.partial(StyleGenerator, **SMALL), functools.partial(discriminator, channel_max=8),
                    StandardGAN(), data={"shape": [1, side, side], "num_levels": 17, "batch_size": 4},
                    optimizer=functools.partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.99)), version=version,
                    latent_dim=8, **kwargs)


def _with_noise(model: StyleGAN, scale: float) -> StyleGAN:
    for name, p in model.generator.named_parameters():
        if name.endswith("noise.scale"):
            p.data.fill_(scale)
    return model


@pytest.mark.parametrize("version", [1, 2])
def test_psi_zero_gives_the_mean_image_for_every_z(version):
    model = _with_noise(_model(version), 0.3)
    model.generator.w_avg.copy_(torch.randn(8))
    z = torch.randn(5, 8)
    with model.truncated(0.0):
        images = model.decode(z)
    assert torch.equal(images, images[:1].expand_as(images))
    assert not torch.allclose(model.decode(z)[0], model.decode(z)[1])  # without truncation they differ
    with model.truncated(1.0):
        torch.testing.assert_close(model.decode(z), model.decode(z))
    ws = model.generator.styles(z)
    half = truncate_styles(ws, model.generator.w_avg, 0.5, cutoff=2)
    torch.testing.assert_close(half[:, :2], (ws[:, :2] + model.generator.w_avg) / 2)
    assert torch.equal(half[:, 2:], ws[:, 2:])  # at and above the cutoff, untouched


@pytest.mark.parametrize("version", [1, 2])
def test_mixing_at_layer_k_takes_the_layers_below_from_the_first_source(version):
    model = _with_noise(_model(version, side=16), 0.1)
    g = model.generator
    a, b = g.styles(torch.randn(3, 8)), g.styles(torch.randn(3, 8))
    k = 3
    mixed = mix_styles(a, b, k)
    assert torch.equal(mixed[:, :k], a[:, :k]) and torch.equal(mixed[:, k:], b[:, k:])
    with torch.no_grad():
        out = g.synthesis(mixed, "fixed")
        torch.testing.assert_close(g.synthesis(mix_styles(a, a, k), "fixed"), g.synthesis(a, "fixed"))  # identity
        b_changed_below = b.clone()
        b_changed_below[:, :k] = torch.randn(3, k, 8)  # the second source's styles below k are never read
        torch.testing.assert_close(g.synthesis(mix_styles(a, b_changed_below, k), "fixed"), out)
        assert not torch.allclose(out, g.synthesis(a, "fixed")) and not torch.allclose(out, g.synthesis(b, "fixed"))
    assert style_groups(16) == {"coarse": range(0, 4), "middle": range(4, 6), "fine": range(6, 6)}
    assert style_groups(256)["fine"] == range(8, 14)


@pytest.mark.parametrize("version", [1, 2])
def test_noise_inputs_change_only_fine_detail(version):
    """Resampled noise moves the image by an amount proportional to the noise scales (bounded); another
    z moves it as a whole. (Version 1's constant starts at ones, which instance norm would erase,
    leaving only the noise at 4x4 until the constant is learned: here it is given structure, as
    training does.)"""
    model = _model(version, side=16)
    g = model.generator
    g.synthesis.const.data.normal_()
    z = torch.randn(16, 8)

    def moved_by_noise(scale: float) -> torch.Tensor:
        _with_noise(model, scale)
        torch.manual_seed(1)
        base = g(z, noise="random")
        return (g(z, noise="random") - base).abs().mean()

    with torch.no_grad():
        assert moved_by_noise(0.0) == 0  # the scales start at 0
        small, double = moved_by_noise(0.02), moved_by_noise(0.04)
        by_z = (g(torch.randn(16, 8), noise="fixed") - g(z, noise="fixed")).abs().mean()
    assert 0 < small < 0.2 * by_z
    assert double / small == pytest.approx(2, rel=0.25)  # bounded: linear in the noise scales
    assert torch.equal(g(z, noise="fixed"), g(z, noise="fixed"))  # sampling is repeatable


def test_demodulation_gives_unit_variance_outputs_for_unit_inputs():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=16)
    x, w = torch.randn(8, 64, 24, 24), torch.randn(8, 16) * 3
    with torch.no_grad():
        interior = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
        assert interior.var().item() == pytest.approx(1.0, abs=0.05)
        assert interior.var(dim=(0, 2, 3)).sub(1).abs().max() < 0.1  # every output channel
        conv.demodulate = False
        assert conv(x, w)[:, :, 1:-1, 1:-1].var().item() > 2  # modulation alone scales the output


def test_the_mean_w_is_a_moving_average_and_the_mapping_network_learns_100x_slower():
    model = _model()
    g = model.generator
    ws = g.styles(torch.randn(6, 8))
    g.track_w_avg(ws, 0.995)
    torch.testing.assert_close(g.w_avg, 0.005 * ws[:, 0].mean(0))
    opt_g, _ = model.configure_optimizers()
    main, mapping = opt_g.param_groups
    assert mapping["lr"] == pytest.approx(1e-5) and main["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in mapping["params"]} == {id(p) for p in g.mapping.parameters()}
    assert len(main["params"]) + len(mapping["params"]) == len(list(g.parameters()))


def test_the_sample_modes_grids():
    model = _with_noise(_model(side=8), 0.1)
    def request(n, options):
        return SampleRequest(n, options, generator=torch.Generator().manual_seed(0))

    images, _, layout = model.mixing(request(1, {"rows": 2, "columns": 3, "styles": "coarse"}))
    grid = images.reshape(3, 4, 1, 8, 8)
    assert layout == 4 and torch.equal(grid[0, 0], torch.ones(1, 8, 8))  # the blank corner
    # at 8x8 every layer is coarse: each cell is its column source
    torch.testing.assert_close(grid[1:, 1:], grid[:1, 1:].expand(2, -1, -1, -1, -1))
    with pytest.raises(UserError, match="no such layers"):
        model.mixing(request(1, {"rows": 2, "columns": 3, "styles": "middle"}))
    model.generator.w_avg.copy_(torch.randn(8))
    images, _, layout = model.truncation_sweep(request(3, {"steps": 4}))
    rows = images.reshape(3, 4, 1, 8, 8)
    torch.testing.assert_close(rows[:, 3], rows[:1, 3].expand(3, -1, -1, -1))  # psi = 0: the mean image
    torch.testing.assert_close(rows[:, 0], model.decode(model.draw_noise(3, torch.Generator().manual_seed(0))))
    images, _, layout = model.noise(request(2, {"resamples": 3, "realizations": 10}))
    rows = images.reshape(2, 5, 1, 8, 8)
    assert layout == 5 and rows[:, 4].max() == 1 and rows[:, 4].min() >= 0  # the std picture, scaled
    assert not torch.equal(rows[:, 1], rows[:, 2])


def test_bad_options_fail_in_one_line():
    with pytest.raises(UserError, match="model.schedule=fixed"):
        _model(version=2, schedule="progressive")
    with pytest.raises(UserError, match="model.version=3"):
        _model(version=3)
    with pytest.raises(UserError, match=r"model\.growing\.fade_images=0"):  # StyleGAN's key, not ProGAN's
        _model(schedule="progressive", growing={"fade_images": 0})
    with pytest.raises(UserError, match="r1_interval=0"):
        _model(r1_interval=0)
    with pytest.raises(UserError, match="truncation_cutoff=9"):
        _model(truncation_cutoff=9)
    with pytest.raises(UserError, match="side 2"):
        _model(side=12)
    with pytest.raises(UserError, match=r"psi in \[0, 1\]"):
        with _model().truncated(1.5):
            pass


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    where = tmp_path_factory.mktemp("classifier")
    return run_directory(run_cli("train", "model=classifier", "data=digits", "trainer.max_steps=2", "callbacks=minimal",
                                 cwd=where), where) / "checkpoints/last.ckpt"


@pytest.mark.parametrize("version, options", [
    (1, ["model.growing.start_resolution=4", "model.growing.fade_images=8", "model.growing.stable_images=8"]),
    (2, ["model.r1_interval=2", "model.path_length_interval=2"]),
])
def test_train_eval_and_sample_every_mode_through_the_cli(tmp_path, classifier, version, options):
    small = ["model.latent_dim=8", "model.generator.w_dim=8", "model.generator.mapping_layers=2",
             "model.generator.channel_max=8", "model.discriminator.channel_max=8"]
    run = run_directory(run_cli("train", "model=stylegan", f"model.version={version}", "data=digits",
                                "data.batch_size=8", "trainer.max_steps=3", "callbacks=minimal", *small, *options,
                                cwd=tmp_path), tmp_path)
    metrics = read_metrics(run)
    assert {"train/d_loss", "train/g_loss", "train/d_R1", "train/resolution"} <= metrics.keys()
    if version == 1:
        assert metrics["train/resolution"] == 8 and 0 < metrics["train/alpha"] <= 1  # grown from 4x4
    else:
        assert "train/g_PathLength" in metrics
    ckpt = run / "checkpoints/last.ckpt"
    for mode, extra, shape in [("mixing", ["mode.rows=2", "mode.columns=3"], (12, 1, 8, 8)),
                               ("truncation", ["num_samples=2", "mode.steps=3"], (6, 1, 8, 8)),
                               ("noise", ["num_samples=2", "mode.resamples=2", "mode.realizations=4", "truncation=0.5"],
                                (8, 1, 8, 8))]:
        out = run_directory(run_cli("sample", f"ckpt_path={ckpt}", f"mode={mode}", *extra, cwd=tmp_path), tmp_path)
        assert np.load(out / "samples/samples.npy").shape == shape, mode
        assert (out / f"samples/{mode}.png").exists()
    out = run_directory(run_cli("eval", f"ckpt_path={ckpt}", "eval.features=classifier",
                                f"eval.features_ckpt={classifier}", "eval.num_samples=50",
                                "eval.metrics=[fid]", "truncation=0.7", f"eval.cache_dir={tmp_path / 'cache'}",
                                cwd=tmp_path), tmp_path)
    assert read_metrics(out)["fid"] > 0
