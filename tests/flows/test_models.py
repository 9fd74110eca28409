"""Every flow model option (configs/model/*.yaml with the FlowModule): a normalised 2-D density,
and train -> eval -> sample through the CLI on 2-D points and on 8x8 digits."""
from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import run_cli
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gen_runner.cli import CONFIG_DIR
from gen_runner.data.toy import Moons
from gen_runner.flows.build import flow as build_flow
from gen_runner.flows.distributions import StandardLogistic

FLOWS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml") if "/base/flow@_here_" in p.read_text())


def test_the_zoo_is_complete():
    expected = {"nice", "realnvp", "glow", "nsf", "cubic_spline_flow", "maf", "iaf", "naf", "sos", "umnn"}
    assert expected <= set(FLOWS)


def vector_flow_from_config(model: str, **sizes) -> torch.nn.Module:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        flow = compose("train", overrides=[f"model={model}"]).model.flow
    return instantiate(OmegaConf.merge(flow, {"vector": sizes}))(data_shape=(2,))


# Smaller integrands for the UMNN (its quadrature dominates the grid's cost). SOS's degree-9
# polynomials, three layers deep, overflow even float64 beyond |x| ~ 7 (README, "Flows"), so its
# grid stops at 6, which still holds all but ~1e-4 of the mass of a density fitted to moons.
SMALLER = {"umnn": {"transformer": {"hidden": [16, 16], "steps": 10}}}
GRID = {"sos": 6.0}


@pytest.mark.parametrize("model", FLOWS)
def test_density_integrates_to_one(model: str):
    """Trained briefly on moons (so ActNorms are initialised and the density is not the base's), the
    flow's density sums to 1 within 1% on a 400 x 400 grid over [-10, 10]^2, in float64."""
    torch.manual_seed(0)
    flow = vector_flow_from_config(model, num_layers=3, hidden=[16, 16], **SMALLER.get(model, {})).double()
    data = Moons().sample(4096, generator=torch.Generator().manual_seed(0)).double()
    optimizer = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for batch in data.split(128):
        loss = -flow.log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    flow.eval()
    n, high = 400, GRID.get(model, 10.0)
    low = -high
    step = (high - low) / n
    centres = low + step * (torch.arange(n, dtype=torch.float64) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        log_prob = torch.cat([flow.log_prob(x) for x in grid.split(50_000)])
    mass = log_prob.exp().sum().item() * step**2
    assert math.isclose(mass, 1.0, abs_tol=0.01), f"{model}: density sums to {mass:.4f}"


# The zoo's sweep on digits takes 69 s on 2 cores, so it runs with the slow tests; by default the
# sweep runs on moons, every flow's image layers go through the contract loop
# (tests/flows/test_transforms.py) and realnvp/glow train, score bits/dim and sample on images
# (tests/test_train.py, tests/test_cli.py, tests/flows/test_layers.py).
@pytest.mark.parametrize("data", ["moons", pytest.param("digits", marks=pytest.mark.slow)])
def test_every_flow_trains_evaluates_and_samples(tmp_path, data: str):
    """One multirun per command over the whole zoo, as a user sweeping models would run it."""
    run_cli("train", "--multirun", f"model={','.join(FLOWS)}", f"data={data}", "trainer.max_steps=3",
            "callbacks=minimal", "logger=csv", "trainer.enable_model_summary=false", cwd=tmp_path)
    checkpoints = sorted(tmp_path.glob("outputs/multirun/train/*/*/checkpoints/last.ckpt"))
    assert len(checkpoints) == len(FLOWS)
    paths = ",".join(str(c) for c in checkpoints)
    run_cli("eval", "--multirun", f"ckpt_path={paths}", "eval.batch_size=200", cwd=tmp_path)
    evaluated = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("outputs/multirun/eval/*/*/metrics.json"))]
    assert sorted(m["protocol"]["model"] for m in evaluated) == FLOWS
    for metrics in evaluated:
        assert math.isfinite(metrics["nll"]), metrics["protocol"]["model"]
        assert (data == "digits") == ("bpd" in metrics)
    run_cli("sample", "--multirun", f"ckpt_path={paths}", "num_samples=8", cwd=tmp_path)
    samples = sorted(tmp_path.glob("outputs/multirun/sample/*/*/samples/samples.pt"))
    assert len(samples) == len(FLOWS)
    for path in samples:
        x = torch.load(path, weights_only=True)
        assert x.shape[0] == 8 and torch.isfinite(x).all(), path


@pytest.mark.parametrize("options, message", [
    # A layer named by a string: `model.flow.image.transformer=additive` typed with a dot, or the
    # config of a checkpoint saved before layers were factories (its old keys too).
    ({"image": {"transformer": "additive"}}, r"pick one with model/flow/image/transformer=<option> \(a slash"),
    ({"vector": {"structure": "coupling"}}, "model.flow.vector.structure='coupling' is not a layer factory"),
    ({"vector": {"permutation": "lu"}}, "or model.flow.vector.permutation=null for none"),
    ({"vector": {"normalization_layer": "batchnorm"}}, "model/flow/vector/normalization=<option>.*retrain it"),
    ({"image": {"layout": "realnvp", "batch_norm": True}}, "model/flow/image/normalization=<option>"),
    ({"image": {"conditioner": None}}, "a flow needs a conditioner"),
    ({"vector": {"base": "cauchy"}}, "unknown base distribution 'cauchy'"),
    ({"image": {"layout": "pyramid"}}, "unknown image layout 'pyramid'"),
    ({"image": {"num_scales": 3}}, "cannot be squeezed 3 times"),
])
def test_bad_architecture_options_say_what_to_choose(options: dict, message: str):
    shape = (1, 4, 4) if "image" in options else (2,)
    with pytest.raises(ValueError, match=message):
        build_flow(shape, **options)


def test_logistic_base_samples_and_density():
    """NICE's prior: samples with the standard logistic's std pi/sqrt(3); a density summing to 1."""
    base = StandardLogistic(1).double()
    samples = base.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert abs(samples.std().item() - math.pi / math.sqrt(3)) < 0.02 and abs(samples.mean().item()) < 0.02
    grid = torch.linspace(-40, 40, 80_001, dtype=torch.float64)[:, None]
    assert math.isclose(base.log_prob(grid).exp().sum().item() * 0.001, 1.0, abs_tol=1e-6)
