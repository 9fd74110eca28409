"""Every option of every config group composes; the schema rejects typos and wrong types."""
from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ValidationError

from gen_runner.cli import config_groups
from helpers import compose_config

NEEDS = {"data": {"tensor_file": ["data.path=x.npy"], "image_folder": ["data.path=imgs"],
                  "paired_folder": ["data.path=pairs"], "unpaired_folder": ["data.path=domains"]}}
GROUPS = config_groups()
TRAIN_OPTIONS = [(g, o) for g, options in GROUPS.items() for o in options if g != "mode"]


def needs(group: str, option: str) -> list[str]:
    """What else an option needs to compose: data files, or a flow model whose layer slot it fills."""
    if group.startswith("model/flow/"):
        return ["model=maf" if group.endswith("/structure") else "model=glow"]
    return NEEDS.get(group, {}).get(option, [])


@pytest.mark.parametrize("group, option", TRAIN_OPTIONS, ids=[f"{g}={o}" for g, o in TRAIN_OPTIONS])
def test_every_train_option_composes(tmp_path, group, option):
    if group == "hparams_search":  # the presets pick Hydra's Optuna sweeper: the optuna extra
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config("train", [*needs(group, option), f"{group}={option}"], tmp_path)
    assert cfg.task_name == "train" and cfg.model._target_ and cfg.data._target_ and cfg.trainer._target_
    assert cfg.paths.output_dir == str(tmp_path)
    if group == "model" and is_noise_gan(cfg.model._target_):  # generator EMA and compile for every GAN
        assert {"ema_decay", "ema_half_life_kimg", "ema_warmup", "compile"} <= set(cfg.model)


def is_noise_gan(target: str) -> bool:
    """A GAN drawn from noise; translation models (pix2pix, CycleGAN, ...) keep no generator EMA."""
    from hydra.utils import get_class
    from gen_runner.gans.module import GANModule
    from gen_runner.gans.translation import TranslationModule
    cls = get_class(target)
    return issubclass(cls, GANModule) and not issubclass(cls, TranslationModule)


@pytest.mark.parametrize("mode", GROUPS["mode"])
def test_every_sample_mode_composes(tmp_path, mode):
    cfg = compose_config("sample", ["ckpt_path=a.ckpt", f"mode={mode}"], tmp_path)
    assert cfg.mode is not None


@pytest.mark.parametrize("command", ["eval", "sample"])
def test_eval_and_sample_compose(tmp_path, command):
    cfg = compose_config(command, ["ckpt_path=outputs/train/gan-ring8/t/checkpoints/last.ckpt"], tmp_path)
    assert cfg.name == "gan-ring8" and cfg.task_name == command
    assert cfg.trainer.accelerator == "cpu"


def test_eval_takes_other_data(tmp_path):
    cfg = compose_config("eval", ["ckpt_path=a.ckpt", "data=tensor_file", "data.path=held.npy"], tmp_path)
    assert cfg.data.path == "held.npy"


def test_defaults_order_model_picks_its_optimizer_but_the_command_line_wins(tmp_path):
    assert compose_config("train", ["model=dcgan"], tmp_path).optimizer.betas == [0.5, 0.999]
    assert compose_config("train", ["model=realnvp"], tmp_path).optimizer.lr == 1e-3
    cfg = compose_config("train", ["optimizer=rmsprop", "model=dcgan"], tmp_path)
    assert cfg.optimizer._target_ == "torch.optim.RMSprop"


def test_experiment_preset_overrides_groups_and_keys(tmp_path):
    cfg = compose_config("train", ["experiment=gan_ring8"], tmp_path)
    assert cfg.name == "gan_ring8" and cfg.data.distribution._target_.endswith("Ring")
    assert cfg.model.latent_dim == 2 and cfg.trainer.max_steps == 10000
    assert compose_config("train", ["experiment=gan_ring8", "trainer.max_steps=7"], tmp_path).trainer.max_steps == 7


def test_debug_options(tmp_path):
    assert compose_config("train", ["debug=fast_dev_run"], tmp_path).trainer.fast_dev_run is True
    assert compose_config("train", ["debug=overfit"], tmp_path).trainer.overfit_batches == 4
    assert compose_config("train", ["debug=limit"], tmp_path).trainer.max_steps == 20


def test_default_run_name_is_model_and_data(tmp_path):
    assert compose_config("train", ["model=gan", "data=ring8"], tmp_path).name == "gan-ring8"


@pytest.mark.parametrize("override, error", [
    ("sed=1", ConfigAttributeError), ("seed=abc", ValidationError), ("num_samples=many", ValidationError),
    ("model.latent_dimm=3", ConfigAttributeError),
])
def test_typos_and_wrong_types_fail_at_composition(tmp_path, override, error):
    with pytest.raises(ConfigCompositionException) as e:
        compose_config("train", [override], tmp_path)
    assert isinstance(e.value.__cause__, error)
    assert override.split("=")[0] in str(e.value) + str(e.value.__cause__)

