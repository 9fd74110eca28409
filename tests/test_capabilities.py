"""Models declare their sample modes and eval metrics (gen_runner/capabilities.py); the tasks and
`gen-runner --help` read the declarations."""
from __future__ import annotations

import importlib

import pytest

from gen_runner.capabilities import Drawn, eval_metric, eval_metrics, sample_mode, sample_modes
from gen_runner.cli import CONFIG_DIR, config_groups, model_target, sample_mode_lines
from gen_runner.capabilities import static_sample_modes, static_truncation


def model_class(option: str):
    module, name = model_target(CONFIG_DIR / "model" / f"{option}.yaml").rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


GENERATOR_MODES = ["samples", "interpolate", "arithmetic"]
# image-to-image models (gans/translation.py): no noise modes, their own metrics
TRANSLATION_METRICS = ["fidelity", "paired", "class_preservation"]


@pytest.mark.parametrize("option, modes, metrics", [
    ("dcgan", GENERATOR_MODES, ["fidelity", "modes"]),
    ("progan", GENERATOR_MODES, ["fidelity", "modes"]),
    ("stylegan", [*GENERATOR_MODES, "mixing", "truncation", "noise"], ["fidelity", "modes"]),
    ("cgan", GENERATOR_MODES, ["fidelity", "modes", "class_accuracy"]),
    ("biggan", GENERATOR_MODES, ["fidelity", "modes", "class_accuracy"]),
    ("infogan", [*GENERATOR_MODES, "traverse"], ["fidelity", "modes", "code_accuracy"]),
    ("bigan", [*GENERATOR_MODES, "reconstruct"], ["fidelity", "modes", "inference"]),
    ("veegan", [*GENERATOR_MODES, "reconstruct"], ["fidelity", "modes", "inference"]),
    ("ssgan", GENERATOR_MODES, ["fidelity", "modes", "classification"]),
    ("realnvp", GENERATOR_MODES, ["fidelity", "likelihood"]),
    ("ffjord", GENERATOR_MODES, ["fidelity", "likelihood"]),
    ("iresnet", GENERATOR_MODES, ["fidelity", "likelihood"]),
    ("residual_flow", GENERATOR_MODES, ["fidelity", "likelihood"]),
    ("vae", [*GENERATOR_MODES, "reconstruct"], ["fidelity", "likelihood_bounds"]),
    ("pix2pix", ["translate"], TRANSLATION_METRICS),
    ("context_encoder", ["translate"], TRANSLATION_METRICS),
    ("cyclegan", ["translate"], [*TRANSLATION_METRICS, "reverse", "cycle_consistency"]),
    ("srgan", ["translate"], [*TRANSLATION_METRICS, "bicubic_baseline"]),
    ("classifier", [], ["classification"]),
])
def test_each_model_declares_its_modes_and_metrics(option, modes, metrics):
    cls = model_class(option)
    assert list(sample_modes(cls)) == modes
    assert [m.name for m in eval_metrics(cls)] == metrics


def test_the_source_reading_for_help_agrees_with_the_classes_for_every_model():
    declared = static_sample_modes(CONFIG_DIR.parent / "gen_runner")
    for option in config_groups()["model"]:
        target = model_target(CONFIG_DIR / "model" / f"{option}.yaml")
        assert target, option
        assert declared.get(target, []) == list(sample_modes(model_class(option))), option


def test_the_source_reading_of_truncation_agrees_with_the_classes_for_every_model():
    declared = static_truncation(CONFIG_DIR.parent / "gen_runner")
    for option in config_groups()["model"]:
        target = model_target(CONFIG_DIR / "model" / f"{option}.yaml")
        assert declared.get(target) == model_class(option).truncation_means, option


def test_help_lists_the_modes_per_model():
    lines = sample_mode_lines()
    assert lines[0].split() == ["every", "generator", "samples,", "interpolate,", "arithmetic"]
    assert any({"bigan", "vae", "veegan"} <= set(line.replace(",", " ").split()) and line.endswith("+ reconstruct")
               for line in lines)
    assert any(line.split()[0] == "infogan" and line.endswith("+ traverse") for line in lines)


def test_a_subclass_adds_a_mode_and_a_metric_and_overriding_undeclared_removes_one():
    base = model_class("gan")

    class Variant(base):
        @sample_mode("the picture of the new mode")
        def sideways(self, request):
            return Drawn(None)

        @eval_metric("novelty", needs="nothing")
        def novelty(self, ctx):
            return {"novelty": 1.0}, {}

        def arithmetic(self, request):  # redefined without a declaration: no longer a mode
            raise AssertionError

    assert list(sample_modes(Variant)) == ["samples", "interpolate", "sideways"]
    assert sample_modes(Variant)["sideways"].picture == "the picture of the new mode"
    assert [m.name for m in eval_metrics(Variant)][-1] == "novelty"
