"""What a model declares it adds: its sample modes, its eval metrics and the inputs it generates from.

The tasks dispatch through these declarations, so a new variant brings its own modes and metrics in
its own module and nothing in gen_runner/tasks/ changes:

    class InfoGANModule(GANModule):
        @sample_mode("a row per value of the first categorical code, continuous code `code` swept along the columns")
        def traverse(self, request: SampleRequest) -> Drawn: ...

        @eval_metric("code_accuracy", needs="eval.features=classifier")
        def code_accuracy(self, ctx) -> tuple[dict, dict] | None: ...

- A sample mode is a method `(request) -> Drawn` named after the mode; its options are the keys of
  configs/mode/<name>.yaml, which `gen-runner sample mode=<name> mode.<key>=...` sets.
- An eval metric is a method `(ctx: gen_runner.metrics.context.EvalContext) -> (metrics, protocol)`,
  or None where it does not apply (the data or the eval options lack what it `needs`).
- `inputs` (a class attribute of the module) says what the model generates from: "noise", "labels"
  (conditional models) and/or "image" (image-to-image models).

Declarations are collected base class first, each class's in definition order, and a subclass
redefining a method replaces its declaration. `static_sample_modes` reads the declarations from the
source without importing it, so `gen-runner --help` lists modes (and what `truncation=` means) per
model without importing torch.
"""
from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["SampleRequest", "Drawn", "SampleMode", "EvalMetric", "sample_mode", "eval_metric", "sample_modes",
           "eval_metrics", "static_sample_modes", "static_truncation"]


@dataclass
class SampleRequest:
    """What `gen-runner sample` asks a mode for: `num_samples` (or `labels`, one sample each, for
    models with "labels" inputs), the mode's `options` (configs/mode/<name>.yaml), a seeded CPU
    `generator`, the `temperature`, the decoding `batch_size`, `input` (image-to-image models: what
    `input=` names, an image folder, a .npy file or split=<name>) and `data()`: the checkpoint's
    datamodule, built on first call (modes that start from data examples). Truncation is set on the
    model for the draw (`model.truncated`, gen_runner/base.py)."""

    num_samples: int
    options: Mapping[str, Any]
    generator: Any  # torch.Generator
    temperature: float = 1.0
    batch_size: int | None = None
    labels: Any = None  # torch.Tensor [n] or None
    per_class: int | None = None
    input: str | None = None
    data: Callable[[], Any] = field(default=lambda: None, repr=False)


class Drawn(NamedTuple):
    """A mode's result: samples in data space, their labels (or None), and the picture's layout:
    None (a square grid), images per row (int), or the length of each row (list)."""

    samples: Any  # torch.Tensor
    labels: Any = None
    layout: int | list[int] | None = None


@dataclass(frozen=True)
class SampleMode:
    name: str
    picture: str  # what the picture shows, row by row
    draw: Callable[[SampleRequest], Drawn]


@dataclass(frozen=True)
class EvalMetric:
    name: str
    produces: str  # the metrics.json keys it writes
    needs: str  # what it needs beyond the checkpoint (data, eval options); "" if nothing
    compute: Callable[[Any], tuple[dict, dict] | None]


def sample_mode(picture: str, name: str | None = None):
    """Declare the decorated method `(self, request: SampleRequest) -> Drawn` as the sample mode of its
    name, or of `name` where that name is taken by something else on the model (StyleGAN's
    mode=truncation: `truncation` is the model's truncation value)."""

    def mark(method):
        method.sample_mode = {"picture": picture, "name": name or method.__name__}
        return method

    return mark


def eval_metric(produces: str, needs: str = ""):
    """Declare the decorated method `(self, ctx) -> (metrics, protocol) | None` as an eval metric."""

    def mark(method):
        method.eval_metric = {"produces": produces, "needs": needs}
        return method

    return mark


def _declared(obj, marker: str) -> dict[str, dict]:
    """{method name: its declaration} over obj's class (or obj, a class) and its bases, base first,
    in definition order."""
    found: dict[str, dict] = {}
    for cls in reversed(obj.__mro__ if isinstance(obj, type) else type(obj).__mro__):
        for name, value in vars(cls).items():
            if callable(value) and hasattr(value, marker):
                found[name] = getattr(value, marker)
            elif name in found:  # overridden by something undeclared: no longer offered
                del found[name]
    return found


def sample_modes(model) -> dict[str, SampleMode]:
    """The sample modes `model` declares, by name (for a class: its unbound methods)."""
    return {decl["name"]: SampleMode(decl["name"], decl["picture"], getattr(model, method))
            for method, decl in _declared(model, "sample_mode").items()}


def eval_metrics(model) -> list[EvalMetric]:
    """The eval metrics `model` declares, in the order they run."""
    return [EvalMetric(name, decl["produces"], decl["needs"], getattr(model, name))
            for name, decl in _declared(model, "eval_metric").items()]


# -- the same declarations, read from the source (for --help, without importing torch) -------------
def _decorated_modes(cls: ast.ClassDef) -> list[str]:
    """The modes the class body declares: each `@sample_mode(...)` method's name, or its `name=`."""
    return [next((k.value.value for k in d.keywords if k.arg == "name"), node.name)
            for node in cls.body if isinstance(node, ast.FunctionDef) for d in node.decorator_list
            if isinstance(d, ast.Call) and getattr(d.func, "id", None) == "sample_mode"]


def _bound_names(cls: ast.ClassDef) -> set[str]:
    """Every name the class body defines or assigns (an undeclared one replaces an inherited mode)."""
    names = {node.name for node in cls.body if isinstance(node, ast.FunctionDef)}
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    return names


def _own_string(cls: ast.ClassDef, attribute: str) -> str | None:
    """The string a class body assigns to `attribute` (implicitly concatenated literals included);
    "" where it assigns None (the class has none), None where it assigns nothing."""
    for node in cls.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == attribute and isinstance(node.value, ast.Constant) \
                and (node.value.value is None or isinstance(node.value.value, str)):
            return node.value.value or ""
    return None


@functools.cache
def _static_classes(package: Path) -> dict[str, tuple[str, list[str], ast.ClassDef]]:
    """{class name: (its module path, its base names, its node)} for every class under `package`."""
    classes = {}
    for file in sorted(package.rglob("*.py")):
        module = ".".join(file.relative_to(package.parent).with_suffix("").parts)
        for node in ast.parse(file.read_text()).body:
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                classes[node.name] = (f"{module}.{node.name}", bases, node)
    return classes


def static_sample_modes(package: Path) -> dict[str, list[str]]:
    """{"module.path.ClassName": its sample modes, inherited ones included} for every class under
    `package` (a source folder) that has any, read with `ast` alone."""
    classes = _static_classes(package)

    def modes(name: str, seen: frozenset = frozenset()) -> list[str]:
        if name not in classes or name in seen:
            return []
        _, bases, node = classes[name]
        own, bound = _decorated_modes(node), _bound_names(node)
        inherited = [m for base in bases for m in modes(base, seen | {name}) if m in own or m not in bound]
        return list(dict.fromkeys(inherited + own))

    return {classes[name][0]: found for name in classes if (found := modes(name))}


def static_truncation(package: Path) -> dict[str, str]:
    """{"module.path.ClassName": what `truncation=` means for it} for every class under `package` that
    says (its own `truncation_means` or its nearest base's), read with `ast` alone."""
    classes = _static_classes(package)

    def meaning(name: str, seen: frozenset = frozenset()) -> str | None:
        if name not in classes or name in seen:
            return None
        _, bases, node = classes[name]
        own = _own_string(node, "truncation_means")
        return own if own is not None else next(
            (m for base in bases if (m := meaning(base, seen | {name})) is not None), None)

    return {classes[name][0]: found for name in classes if (found := meaning(name))}
