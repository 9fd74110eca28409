"""Flow layers as factories (gen_runner/flows/build.py): every option of every layer group
(configs/model/flow/{vector,image}/<layer>/) builds with the builder's call signature; layers the
library does not have plug in through a YAML file alone; Glow's additive coupling is a config
choice; nets/ imports nothing from flows/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import yaml
from helpers import compose_config
from hydra.utils import instantiate
from layers import channel_data, initialized, perturb
from omegaconf import OmegaConf
from torch import nn

import gen_runner
from gen_runner.cli import CONFIG_DIR
from gen_runner.flows.transforms.base import Transform
from gen_runner.flows.transforms.coupling import Coupling, alternating_mask
from gen_runner.flows.transforms.normalization import BatchNorm
from gen_runner.flows.transforms.univariate import Additive, Affine, Univariate
from gen_runner.nets.glow import GlowPrior

LAYER_OPTIONS = sorted((CONFIG_DIR / "model" / "flow").glob("*/*/*.yaml"))


# Layers the library does not have, as a user would write them.
class Roll(Transform):
    """A permutation: the features (channels) shifted cyclically by `shift`."""

    def __init__(self, num_features: int, seed: int | None = None, shift: int = 1):
        super().__init__()
        self.shift = shift

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x.roll(self.shift, 1), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y.roll(-self.shift, 1), y.new_zeros(y.shape[0])


class FixedScale(Transform):
    """A normalization: y = x * exp(log_scale) per feature (channel), log_scale learned."""

    def __init__(self, num_features: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.linspace(-0.5, 0.5, num_features))

    def _scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logabsdet = (self.log_scale.sum() * x.shape[2:].numel()).expand(x.shape[0])
        return self.log_scale.view((-1,) + (1,) * (x.dim() - 2)).exp(), logabsdet

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scale, logabsdet = self._scale(x)
        return x * scale, logabsdet

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scale, logabsdet = self._scale(y)
        return y / scale, -logabsdet


def linear_coupling(dim: int, transformer: Univariate, index: int, *, hidden, activation, zero_init, seed) -> Coupling:
    """A structure: a coupling whose conditioner is one linear map."""
    mask = alternating_mask(dim, index)
    return Coupling(mask, nn.Linear(int(mask.sum()), transformer.num_params * int((~mask).sum())), transformer)


class PlainConv(nn.Conv2d):
    """A multi-scale conditioner: one 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int):
        super().__init__(in_channels, out_channels, 3, padding=1)


def plug_in(root: Path, kind: str, layer: str, name: str, target: object, **params) -> str:
    """configs/model/flow/<kind>/<layer>/<name>.yaml under `root`, naming `target`; its override."""
    folder = root / "model" / "flow" / kind / layer
    folder.mkdir(parents=True, exist_ok=True)
    node = {"_target_": f"{__name__}.{target.__name__}", "_partial_": True, **params}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(node))
    return f"model/flow/{kind}/{layer}={name}"


def assert_bijection(transform: Transform, x: torch.Tensor, jacobian_logabsdet) -> None:
    y, logabsdet = transform(x)
    x_again, inverse_logabsdet = transform.inverse(y)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)
    torch.testing.assert_close(logabsdet, jacobian_logabsdet(lambda v: transform(v)[0], x))


def test_new_vector_layers_plug_in_with_a_yaml_file_each(tmp_path, jacobian_logabsdet):
    """A structure, a permutation and a normalization defined here, chosen from the command line
    like the library's own: build.py knows none of them."""
    configs = tmp_path / "configs"
    overrides = [plug_in(configs, "vector", "structure", "linear", linear_coupling),
                 plug_in(configs, "vector", "permutation", "roll", Roll, shift=1),
                 plug_in(configs, "vector", "normalization", "fixed_scale", FixedScale)]
    cfg = compose_config("train", ["model=glow", *overrides, f"hydra.searchpath=[file://{configs}]"], tmp_path)
    torch.manual_seed(0)
    flow = instantiate(cfg.model.flow)(data_shape=(3,)).double().eval()
    layers = list(flow.transform.transforms)
    assert [type(t) for t in layers] == [Coupling, FixedScale, Roll] * 4 + [Coupling]
    assert all(isinstance(t.conditioner, nn.Linear) and t.transformer.scale == "sigmoid"
               for t in layers if isinstance(t, Coupling))
    assert_bijection(flow.transform, torch.randn(4, 3, dtype=torch.float64), jacobian_logabsdet)


def test_new_image_layers_plug_in_with_a_yaml_file_each(tmp_path, jacobian_logabsdet):
    configs = tmp_path / "configs"
    overrides = [plug_in(configs, "image", "conditioner", "plain_conv", PlainConv),
                 plug_in(configs, "image", "permutation", "roll", Roll, shift=2),
                 plug_in(configs, "image", "normalization", "fixed_scale", FixedScale)]
    cfg = compose_config("train", ["model=glow", *overrides, "model.flow.image.steps=1",
                                   f"hydra.searchpath=[file://{configs}]"], tmp_path)
    torch.manual_seed(0)
    flow = perturb(instantiate(cfg.model.flow)(data_shape=(2, 4, 4)).double().eval(), 0.05)
    kinds = {type(m) for m in flow.modules()}
    assert {PlainConv, Roll, FixedScale} <= kinds
    assert [m.shift for m in flow.modules() if isinstance(m, Roll)] == [2, 2]
    assert_bijection(flow.transform, torch.rand(2, 2, 4, 4, dtype=torch.float64), jacobian_logabsdet)


@pytest.mark.parametrize("path", LAYER_OPTIONS, ids=lambda p: "/".join(p.with_suffix("").parts[-3:]))
def test_every_layer_option_builds_with_the_builders_signature(path: Path):
    """Each option called as build.py calls its layer; the transforms (after one training batch,
    which initializes ActNorm and batch statistics) are bijections in eval mode."""
    torch.manual_seed(0)
    factory = instantiate(OmegaConf.load(path))
    layer = path.parent.name
    if layer == "transformer":
        assert isinstance(factory(), Univariate)
        return
    if layer == "conditioner":
        net = factory(4, 8, 6)
        assert net(torch.randn(2, 4, 3, 3)).shape == (2, 8, 3, 3)
        return
    if layer == "structure":
        transform, shape = factory(4, Affine(), 1, hidden=[8], activation="relu", zero_init=False, seed=0), (4,)
    elif layer == "permutation":
        transform, shape = factory(4, seed=3), (4, 2, 2)
    else:
        transform, shape = factory(4), (4, 2, 2)
    assert isinstance(transform, Transform)
    transform = initialized(transform, shape).double().eval()
    x = channel_data(5, shape, torch.float64)
    y, logabsdet = transform(x)
    x_again, inverse_logabsdet = transform.inverse(y)
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)


def test_vector_and_image_options_of_the_same_name_agree():
    by_name: dict[tuple[str, str], set[str]] = {}
    for path in LAYER_OPTIONS:
        by_name.setdefault((path.parent.name, path.name), set()).add(path.read_text())
    assert all(len(texts) == 1 for texts in by_name.values()), [k for k, v in by_name.items() if len(v) > 1]


# The layers each image layout builds from (gen_runner/flows/build.py, realnvp.py).
SLOTS = {
    "vector": {"transformer", "structure", "permutation", "normalization"},
    "flatten": {"transformer", "structure", "permutation", "normalization"},
    "multiscale": {"transformer", "conditioner", "permutation", "normalization"},
    "realnvp": {"normalization"},
}
# Flows built from the layer slots (residual flows name their own builder: flows/iresnet.py).
FLOWS = sorted(p for p in (CONFIG_DIR / "model").glob("*.yaml") if "/base/flow@_here_" in p.read_text()
               and (yaml.safe_load(p.read_text())["flow"] or {}).get("_target_") is None)


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.stem)
def test_every_flow_model_names_each_layer_it_builds(path: Path):
    """Every slot in the defaults list (null where none), so that model/flow/<kind>/<layer>=<option>
    works on every model without a '+'; no layer set inline, where a switch would leave stray keys."""
    config = yaml.safe_load(path.read_text())
    chosen: dict[str, set[str]] = {"vector": set(), "image": set()}
    for entry in config["defaults"]:
        if isinstance(entry, dict) and next(iter(entry)).startswith("flow/"):
            _, kind, layer = next(iter(entry)).split("/")
            chosen[kind].add(layer)
    assert chosen["vector"] == SLOTS["vector"]
    assert chosen["image"] == SLOTS[config["flow"]["image"]["layout"]]
    for kind in ("vector", "image"):
        assert not set(config["flow"][kind]) & {"transformer", "structure", "permutation", "normalization", "conditioner"}


def test_glow_with_additive_couplings_builds_and_trains_a_step(tmp_path):
    """Glow's additive ablation (Kingma & Dhariwal 2018, sec. 5.1) is a transformer option."""
    cfg = compose_config("train", ["model=glow", "model/flow/image/transformer=additive", "model.flow.image.steps=2",
                                   "model.flow.image.hidden_channels=8"], tmp_path)
    torch.manual_seed(0)
    flow = instantiate(cfg.model.flow)(data_shape=(1, 8, 8))
    couplings = [m for m in flow.modules() if isinstance(m, Coupling) and not isinstance(m.conditioner, GlowPrior)]
    assert len(couplings) == 4 and all(isinstance(c.transformer, Additive) for c in couplings)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    x = torch.rand(16, 1, 8, 8)
    losses = []
    for _ in range(2):
        loss = -flow.log_prob(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[1] < losses[0]
    with torch.no_grad():
        _, logabsdet = perturb(couplings[0]).eval()(torch.randn(3, 4, 4, 4))
    torch.testing.assert_close(logabsdet, torch.zeros(3), atol=0, rtol=0)  # volume preserving


def test_maf_has_batch_norm_on_images_only(tmp_path):
    """scripts/bench_flows.py's finding on 2-D points; the paper's MNIST setup keeps it."""
    for overrides in (["model=maf"], ["experiment=maf_mnist"]):
        cfg = compose_config("train", overrides, tmp_path)
        assert "normalization" not in cfg.model.flow.vector
        assert cfg.model.flow.image.normalization._target_.endswith("normalization.BatchNorm")
    flow = instantiate(cfg.model.flow)(data_shape=(2,))
    assert not any(isinstance(m, BatchNorm) for m in flow.modules())


def test_nets_import_nothing_from_flows():
    """nets/ is the bottom layer: plain modules that flows/, gans/ and the rest build on.

    The one exception is gen_runner.errors, a leaf that imports nothing (its UserError is how
    a net refuses a bad size in one line)."""
    nets = Path(gen_runner.__file__).parent / "nets"
    imports = []
    for path in sorted(nets.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imports.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                imports += [(path.name, alias.name) for alias in node.names]
    upward = [(name, module) for name, module in imports
              if module.startswith("gen_runner.") and not module.startswith("gen_runner.nets")
              and module != "gen_runner.errors"]
    assert upward == []
    errors = ast.parse((nets.parent / "errors.py").read_text())
    assert not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(errors))
    assert ("glow.py", "gen_runner.nets.actnorm") in imports
