"""The evaluation suite end to end: the classifier as a feature extractor, image metrics with their
protocol and the real-feature cache, Stacked MNIST mode counting, in-training evaluation."""
from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gen_runner.data.datamodule import DigitsDataModule, StackedDataModule
from gen_runner.errors import UserError
from gen_runner.metrics import fidelity
from gen_runner.metrics.features import ClassifierFeatures, channel_labels, make_extractor, state_sha256
from gen_runner.metrics.modes import stacked_modes
from gen_runner.checkpoints import load_checkpoint
from gen_runner.tasks.evaluate import evaluate
from gen_runner.tasks.sample import sample
from gen_runner.tasks.train import train
from helpers import FAST, compose_config

CPU = torch.device("cpu")


def _config(factory, command, *overrides):
    out = factory.mktemp(command)
    return compose_config(command, list(overrides), out)


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    """The digits feature extractor, trained briefly (about 5 s)."""
    cfg = _config(tmp_path_factory, "train", "experiment=classifier_digits", "trainer.max_steps=300", *FAST)
    train(cfg)
    return f"{cfg.paths.output_dir}/checkpoints/last.ckpt"


@pytest.fixture(scope="module")
def dcgan_ckpt(tmp_path_factory):
    cfg = _config(tmp_path_factory, "train", "model=dcgan", "data=digits", "model.generator.conv.base_channels=16",
                  "model.discriminator.conv.base_channels=16", "trainer.max_steps=30", *FAST)
    train(cfg)
    return f"{cfg.paths.output_dir}/checkpoints/last.ckpt"


def test_classifier_reaches_a_sensible_test_accuracy(tmp_path_factory, classifier_ckpt):
    cfg = _config(tmp_path_factory, "eval", f"ckpt_path={classifier_ckpt}")
    metrics = evaluate(cfg)
    assert metrics["accuracy"] > 0.9 and metrics["nll"] < 0.5


def test_classifier_features_separate_real_from_noise(classifier_ckpt):
    """FID in the classifier's feature space: real vs real is far below real vs noise."""
    extractor = ClassifierFeatures(classifier_ckpt, CPU)
    dm = DigitsDataModule(seed=0)
    dm.setup()
    train_f, _ = extractor(dm.splits["train"].tensors[0].float() / 16)
    test_f, _ = extractor(dm.splits["test"].tensors[0].float() / 16)
    noise_f, _ = extractor(torch.rand(180, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert train_f.shape[1] == 128
    assert fidelity.fid(train_f, test_f) < 0.1 * fidelity.fid(train_f, noise_f)


def test_image_metrics_protocol_and_real_feature_cache(tmp_path_factory, tmp_path, classifier_ckpt, dcgan_ckpt):
    args = [f"ckpt_path={dcgan_ckpt}", "eval.features=classifier", f"eval.features_ckpt={classifier_ckpt}",
            "eval.num_samples=300", "eval.kid_subset_size=100", "eval.kid_subsets=10", "eval.is_splits=3",
            f"eval.cache_dir={tmp_path / 'cache'}"]
    first = _config(tmp_path_factory, "eval", *args)
    metrics = evaluate(first)
    assert {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density", "coverage"} <= metrics.keys()
    assert metrics["fid"] > 0 and 1 <= metrics["is"] <= 10
    protocol = json.loads(open(f"{first.paths.output_dir}/metrics.json").read())["protocol"]
    expected_sha = state_sha256(load_checkpoint(classifier_ckpt)["state_dict"])
    assert protocol["features"] == "classifier" and protocol["features_sha256"] == expected_sha
    expected = {"num_real": 180, "num_generated": 300, "split": "test", "kid_subsets": 10, "kid_subset_size": 100,
                "is_splits": 3, "image_size": [8, 8], "seed": 0, "prdc_k": 3, "density_coverage_k": 5}
    assert {k: protocol[k] for k in expected} == expected
    assert len(list((tmp_path / "cache").iterdir())) == 1
    cached = list((tmp_path / "cache").iterdir())[0].stat().st_mtime_ns
    again = evaluate(_config(tmp_path_factory, "eval", *args))
    assert again == metrics  # the cached real features give the same numbers
    assert list((tmp_path / "cache").iterdir())[0].stat().st_mtime_ns == cached


def test_stacked_mode_counting_on_real_stacked_digits(classifier_ckpt):
    extractor = ClassifierFeatures(classifier_ckpt, CPU)
    dm = StackedDataModule(source="digits", num_examples=10_000, val_fraction=0, test_fraction=0, batch_size=100)
    dm.setup()
    images = dm.splits["train"].tensors[0].float() / 16
    assert images.shape == (10_000, 3, 8, 8)
    found = stacked_modes(channel_labels(extractor, images))
    # 10,000 uniform draws over 1,000 triples miss 1000 e^-10 < 1 of them; the classifier errs ~3%.
    assert found["modes"] >= 990 and found["reverse_kl"] < 0.1
    collapsed = stacked_modes(channel_labels(extractor, images[:1].expand(2000, -1, -1, -1)))
    assert collapsed["modes"] == 1 and collapsed["reverse_kl"] == pytest.approx(math.log(1000))


def test_in_training_evaluation_logs_and_keeps_the_best(tmp_path_factory, classifier_ckpt):
    cfg = _config(tmp_path_factory, "train", "model=dcgan", "data=digits", "model.generator.conv.base_channels=8",
                  "model.discriminator.conv.base_channels=8", "trainer.max_steps=20", "callbacks=fidelity",
                  f"callbacks.fidelity.features_ckpt={classifier_ckpt}", "callbacks.fidelity.every_n_steps=10",
                  "callbacks.fidelity.num_samples=200", "callbacks.fidelity.num_real=150",
                  "callbacks.fidelity.kid_subset_size=100", "trainer.enable_model_summary=false")
    train(cfg)
    out = cfg.paths.output_dir
    acc = EventAccumulator(f"{out}/tensorboard", size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("val/fid")] == [10, 20] and "val/kid" in acc.Tags()["scalars"]
    best = torch.load(f"{out}/checkpoints/best.ckpt", weights_only=True)
    fids = {e.step: e.value for e in acc.Scalars("val/fid")}
    assert best["global_step"] == min(fids, key=fids.get)


def test_classifier_checkpoints_do_not_sample(tmp_path_factory, classifier_ckpt):
    with pytest.raises(UserError, match="does not sample"):
        sample(_config(tmp_path_factory, "sample", f"ckpt_path={classifier_ckpt}"))


def test_wrong_extractor_inputs(tmp_path_factory, classifier_ckpt, dcgan_ckpt):
    with pytest.raises(UserError, match="needs eval.features_ckpt"):
        make_extractor("classifier", None, CPU)
    with pytest.raises(UserError, match="holds a gan; pass a model=classifier checkpoint"):
        make_extractor("classifier", dcgan_ckpt, CPU)
    with pytest.raises(UserError, match="choose classifier or inception"):
        make_extractor("vgg", None, CPU)
    with pytest.raises(UserError, match="takes 1-channel images"):
        ClassifierFeatures(classifier_ckpt, CPU)(torch.rand(2, 3, 8, 8))


def test_inception_without_the_extra_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    with pytest.raises(UserError, match=r"pip install 'gen-runner\[inception\]'"):
        make_extractor("inception", None, CPU)


def test_inception_features_when_installed():
    pytest.importorskip("torch_fidelity")
    try:
        extractor = make_extractor("inception", None, CPU)
    except UserError as e:  # installed, but the weights are not cached and the machine is offline
        pytest.skip(str(e))
    features, logits = extractor(torch.rand(2, 1, 28, 28))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
