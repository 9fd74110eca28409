"""The import contract: gen_runner's layers only import downwards, and Lightning stays in the layers
that need it. Read from the source with `ast`, so the test costs no import."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gen_runner"

# Bottom up; a module belongs to the layer of its longest matching prefix.
LAYERS = [
    ["gen_runner.errors", "gen_runner.capabilities", "gen_runner.finite", "gen_runner.truncation", "gen_runner.configs"],
    ["gen_runner.nets"],
    ["gen_runner.flows.transforms"],
    ["gen_runner.data", "gen_runner.metrics", "gen_runner.gans.objectives", "gen_runner.gans.regularizers",
     "gen_runner.flows", "gen_runner.vae.posteriors", "gen_runner.walks", "gen_runner.visualize", "gen_runner.instantiate",
     "gen_runner.checkpoints", "gen_runner.report"],
    ["gen_runner.base", "gen_runner.gans", "gen_runner.flows.module", "gen_runner.flows.ffjord", "gen_runner.classifier",
     "gen_runner.vae"],
    ["gen_runner.callbacks"],
    ["gen_runner.tasks"],
    ["gen_runner.cli", "gen_runner.schema", "gen_runner.__main__"],
]
# Lightning: the LightningModules, the datamodule, callbacks and tasks only.
LIGHTNING_ALLOWED = ["gen_runner.base", "gen_runner.gans", "gen_runner.flows.module", "gen_runner.classifier",
                     "gen_runner.vae.module",
                     "gen_runner.data.datamodule", "gen_runner.callbacks", "gen_runner.tasks"]


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, layer in enumerate(LAYERS) for p in layer if _matches(module, p)), default=None)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    """(imported module, line) of every import in the file, at any depth (function-level ones too)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from gen_runner import walks` imports the submodule gen_runner.walks
            found += [(f"{base}.{alias.name}" if base == "gen_runner" else base, node.lineno) for alias in node.names]
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    """Imports of `path` that point up the layers, or bring Lightning where it is not allowed."""
    here = module_name(path)
    found = imports(path, source)
    bad = [f"{path.name}:{line} imports {target} (layer {layer_of(target)} above {layer_of(here)})"
           for target, line in found if target.startswith("gen_runner") and layer_of(target) > layer_of(here)]
    if not any(_matches(here, p) for p in LIGHTNING_ALLOWED):
        bad += [f"{path.name}:{line} imports {target}" for target, line in found
                if target.split(".")[0] in ("lightning", "pytorch_lightning")]
    return bad


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers_and_lightning_stays_in_its_layers(path):
    assert not violations(path)


def test_the_contract_reports_an_upward_import_and_a_stray_lightning():
    found = violations(PACKAGE / "nets" / "probe.py", "import torch\nfrom gen_runner.tasks import common\n"
                                                       "def f():\n    import lightning\n")
    assert len(found) == 2 and "gen_runner.tasks" in found[0] and "lightning" in found[1]
