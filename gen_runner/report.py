"""A leaderboard of finished runs: markdown and CSV tables and plots of their TensorBoard scalars.

Every directory at or below the given ones that holds a `metrics.json` is a run. A run's config is
its `.hydra/config.yaml`, flattened to dotted keys and resolved against its own `.hydra/hydra.yaml`,
plus `choice/<group>` for the config-group options it was composed from. An eval run (one whose
protocol names a `checkpoint`) sees the config of the training run that wrote the checkpoint, with
its own keys on top under `eval.` (`seed` -> `eval.seed`; `eval.split` stays `eval.split`).

The table shows the config keys whose values differ between runs, then every metric. Runs that
differ only in `seed` are aggregated (mean ± sample std over seeds). Runs measured under different
protocols (metrics.json's `protocol`, less what identifies a run) are refused unless
`mix_protocols`, which adds the differing protocol keys as `protocol.<key>` columns instead.
"""
from __future__ import annotations

import csv
import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gen_runner.errors import UserError

__all__ = ["make_report", "RANKING", "HIGHER_IS_BETTER", "CONFIG_IDENTITY", "PROTOCOL_IDENTITY"]

# Default ranking metric: the first of these found, exactly or as the last part of a name (`val/nll`
# before `train/nll`).
RANKING = ("fid", "kid", "bpd", "nll", "reverse_kl", "modes", "high_quality_pct", "accuracy", "is",
           "precision", "recall", "density", "coverage")
HIGHER_IS_BETTER = {"modes", "high_quality_pct", "accuracy", "is", "precision", "recall", "density", "coverage"}
# Config keys that identify a run rather than configure it (top-level names, leaf names), and
# Hydra's plumbing (_target_, _partial_: the `choice/<group>` columns already name the classes).
CONFIG_IDENTITY = ("paths", "ckpt_path", "name", "task_name")
CONFIG_IDENTITY_LEAVES = ("dirpath", "save_dir", "default_root_dir", "_target_", "_partial_")
# Protocol keys that identify a run (or restate its config) rather than say how it was measured.
PROTOCOL_IDENTITY = ("checkpoint", "step", "steps", "seed", "model", "data", "command", "metrics", "batch_size")
SEED = "seed"
MAX_PLOTS = 8


@dataclass
class _Run:
    path: Path
    name: str  # path relative to the runs' common parent
    metrics: dict[str, float]
    protocol: dict[str, Any]
    config: dict[str, Any]
    scalars: dict[str, list[tuple[int, float]]]
    own: set[str]  # the strings that name its directory


# -- finding and reading runs ------------------------------------------------------------------------
def _find_runs(dirs: list[str | Path]) -> list[Path]:
    found = set()
    for d in map(Path, dirs):
        if not d.is_dir():
            raise UserError(f"report.dirs: no such directory: {d}; pass run or multirun directories, "
                            "e.g. gen-runner report outputs/multirun/train/<time>")
        found.update(p.parent.resolve() for p in d.rglob("metrics.json"))
    if not found:
        searched = ", ".join(map(str, dirs)) or "none given"
        raise UserError(f"no runs (directories with a metrics.json) at or below: {searched}; pass run or multirun "
                        "directories written by train or eval, e.g. gen-runner report outputs/multirun/train/<time>")
    return sorted(found)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({type(e).__name__}): {e}; remove it or pass other directories") from e
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object of metrics; remove it or pass other directories")
    return data


def _hydra_node(run: Path) -> DictConfig:
    path = run / ".hydra" / "hydra.yaml"
    node = OmegaConf.load(path).get("hydra") if path.is_file() else None
    return node if isinstance(node, DictConfig) else OmegaConf.create()


def _own_paths(run: Path, hydra: DictConfig) -> set[str]:
    """The strings that name this run's directory: where it is now, and where it was written."""
    written = OmegaConf.select(hydra, "runtime.output_dir", throw_on_resolution_failure=False)
    return {str(run)} | ({str(written)} if written else set())


def _identifies(key: str) -> bool:
    first, leaf = key.split(".")[0], key.rsplit(".", 1)[-1]
    return first in CONFIG_IDENTITY or first.startswith("hydra") or leaf in CONFIG_IDENTITY_LEAVES


def _names_run(value: Any, own: set[str]) -> bool:
    """Whether `value` holds one of the paths in `own` (a whole path: /runs/1 is not in /runs/10/x)."""
    return isinstance(value, str) and any(path + os.sep in value + os.sep for path in own)


def _leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _resolved(cfg: DictConfig, key: str, raw: Any) -> Any:
    """The value of `key` with interpolations resolved; the raw text where they cannot be."""
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    except OmegaConfBaseException:
        return raw


def _own_config(run: Path) -> dict[str, Any]:
    """`choice/<group>` and the flattened `.hydra/config.yaml`, less the keys that identify the run.

    `${hydra:...}` is resolved against the run's own hydra.yaml, not the reporting process's."""
    path = run / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    hydra = _hydra_node(run)
    own = _own_paths(run, hydra)
    cfg = OmegaConf.create(path.read_text().replace("${hydra:", "${hydra."))
    raw = OmegaConf.to_container(cfg, resolve=False)
    cfg.hydra = hydra
    choices = OmegaConf.select(hydra, "runtime.choices") or {}
    config = {f"choice/{group}": option for group, option in choices.items() if not _identifies(group)}
    for key, value in _leaves(raw):
        if not _identifies(key):
            config[key] = _resolved(cfg, key, value)
    return {k: v for k, v in config.items() if not _names_run(v, own)}


def _training_run(run: Path, checkpoint: str) -> Path | None:
    """The directory of the training run that wrote `checkpoint` (relative paths: to where eval ran)."""
    ckpt = Path(checkpoint).expanduser()
    cwd = OmegaConf.select(_hydra_node(run), "runtime.cwd", throw_on_resolution_failure=False)
    for candidate in ([ckpt] if ckpt.is_absolute() else [Path(cwd or ".") / ckpt, ckpt]):
        train = candidate.parent.parent if candidate.parent.name == "checkpoints" else candidate.parent
        if (train / ".hydra" / "config.yaml").is_file():
            return train.resolve()
    return None


def _config(run: Path, protocol: dict) -> dict[str, Any]:
    config = _own_config(run)
    if not protocol.get("checkpoint"):
        return config
    evaluated = {k if k.startswith("eval.") else f"eval.{k}": v for k, v in config.items()}
    train = _training_run(run, str(protocol["checkpoint"]))
    return {**(_own_config(train) if train else {}), **evaluated}


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    directory = run / "tensorboard"
    if not directory.is_dir():
        return {}
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _common_parent(paths: list[Path]) -> Path:
    base = Path(os.path.commonpath(paths))
    return base.parent if base in paths else base


def _read_runs(paths: list[Path]) -> list[_Run]:
    base = _common_parent(paths)
    runs = []
    for path in paths:
        data = _read_json(path / "metrics.json")
        protocol = data.get("protocol") if isinstance(data.get("protocol"), dict) else {}
        metrics = {k: float(v) for k, v in data.items() if _is_number(v)}
        runs.append(_Run(path, path.relative_to(base).as_posix(), metrics, protocol, _config(path, protocol),
                         _scalars(path), _own_paths(path, _hydra_node(path))))
    return runs


# -- comparing runs ------------------------------------------------------------------------------------
_ABSENT = object()


def _key(value: Any) -> str:
    return "<absent>" if value is _ABSENT else json.dumps(value, sort_keys=True, default=str)


def _differing(dicts: list[dict]) -> list[str]:
    """Keys (in order of first appearance) whose values are not the same in all `dicts`."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return [k for k in keys if len({_key(d.get(k, _ABSENT)) for d in dicts}) > 1]


def _measurement(run: _Run) -> dict[str, Any]:
    """The protocol less what identifies the run: how its metrics were measured."""
    return {k: v for k, v in run.protocol.items() if k not in PROTOCOL_IDENTITY and not _names_run(v, run.own)}


def _short(value: Any, width: int = 32) -> str:
    text = "(none)" if value is _ABSENT else _text(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _protocol_columns(runs: list[_Run], mix_protocols: bool) -> dict[str, dict[str, Any]]:
    """`protocol.<key>` values per run name for the protocol keys that differ; refused unless mixing.

    Only keys every run records are compared: a key some runs lack belongs to a metric they do not
    report (a flow's bits/dim beside a GAN's FID), which cannot be ranked against them anyway."""
    measured = [_measurement(r) for r in runs]
    shared = set.intersection(*(set(m) for m in measured))
    keys = [k for k in _differing(measured) if k in shared]
    if keys and not mix_protocols:
        values = {k: sorted({_short(m.get(k, _ABSENT)) for m in measured}) for k in keys}
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in values.items())
        raise UserError(f"the runs were measured under different protocols ({details}); "
                        "pass report.mix_protocols=true to rank them together")
    return {r.name: {f"protocol.{k}": m[k] for k in keys if k in m} for r, m in zip(runs, measured)}


def _ranking(metric_columns: list[str], sort: str | None) -> str | None:
    if sort is not None:
        if sort not in metric_columns:
            raise UserError(f"report.sort={sort}: not a metric of these runs; "
                            f"choose one of: {', '.join(metric_columns)}")
        return sort
    for name in RANKING:
        if name in metric_columns:
            return name
        suffixed = [c for c in metric_columns if c.rsplit("/", 1)[-1] == name]  # val/nll, train/nll, ...
        if suffixed:
            return min(suffixed, key=lambda c: c.startswith("train/"))  # held-out values first
    return None


def _higher_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in HIGHER_IS_BETTER


# -- rows ------------------------------------------------------------------------------------------------
def _rows(runs: list[_Run], columns: list[str], protocols: dict[str, dict]) -> list[dict]:
    """One row per run: run, seeds, its differing config keys, protocol columns, metrics."""
    return [{"run": r.name, "seeds": r.config.get(SEED, ""), **{k: r.config[k] for k in columns if k in r.config},
             **protocols[r.name], **r.metrics} for r in runs]


def _aggregate(group: list[dict], metrics: list[str]) -> dict:
    """mean, sample std and n over the rows of `group` (runs that differ only in seed)."""
    row = {k: v for k, v in group[0].items() if k not in metrics}
    row.update(run=", ".join(r["run"] for r in group), seeds=f"n={len(group)}")
    for m in metrics:
        values = [r[m] for r in group if m in r]
        if values:
            row[m], row[f"n({m})"] = statistics.fmean(values), len(values)
            if len(values) > 1:
                row[f"std({m})"] = statistics.stdev(values)
    return row


def _groups(rows: list[dict], columns: list[str]) -> list[list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(_key([row.get(c, _ABSENT) for c in columns]), []).append(row)
    return list(groups.values())


def _rank_key(metric: str | None):
    def key(row: dict):
        value = row.get(metric) if metric else None
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, -value if _higher_is_better(metric) else value)
    return key


# -- writing ---------------------------------------------------------------------------------------------
def _text(value: Any, precise: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value) if precise else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _cell(row: dict, column: str, metrics: list[str]) -> str:
    if column not in row:
        return ""
    value = row[column]
    if column in metrics and f"n({column})" in row:
        spread = f" ± {row[f'std({column})']:.4g}" if f"std({column})" in row else ""
        return f"{value:.4g}{spread} (n={row[f'n({column})']})"
    return _text(value)


def _markdown(rows: list[dict], columns: list[str], metrics: list[str], title: str, summary: str) -> str:
    lines = [title, "", summary, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (_cell(row, c, metrics).replace("|", "\\|") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row[c], precise=True) if c in row else "" for c in columns])


def _default_scalars(runs: list[_Run]) -> list[str]:
    shared = set.intersection(*(set(r.scalars) for r in runs))
    return sorted(t for t in shared if t != "epoch" and not t.startswith("hparams/"))[:MAX_PLOTS]


def _check_scalars(runs: list[_Run], scalars: list[str]) -> None:
    logged = sorted({t for r in runs for t in r.scalars})
    missing = [s for s in scalars if not any(s in r.scalars for r in runs)]
    if missing:
        raise UserError(f"report.scalars: no run logged {', '.join(missing)}; "
                        f"the runs logged: {', '.join(logged) or 'no TensorBoard scalars'}")


def _plot(runs: list[_Run], scalar: str, labels: dict[str, str], path: Path) -> Path:
    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.add_subplot()
    for run in runs:
        if scalar in run.scalars:
            steps, values = zip(*run.scalars[scalar])
            ax.plot(steps, values, label=labels[run.name], linewidth=1.2)
    ax.set_title(scalar)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.set_layout_engine("constrained")
    fig.savefig(path)
    return path


def _labels(runs: list[_Run], rows: list[dict], keys: list[str]) -> dict[str, str]:
    """Each run's differing config (and protocol) values, or its name where nothing differs."""
    show_seed = len({_key(r["seeds"]) for r in rows}) > 1
    labels = {}
    for run, row in zip(runs, rows):
        parts = [f"{k}={_text(row[k])}" for k in keys if k in row] + ([f"seed={row['seeds']}"] if show_seed else [])
        labels[run.name] = ", ".join(parts) or run.name
    return labels


def _ranked(rows: list[dict], keys: list[str], metrics: list[str], ranked_by: str | None):
    """(the table's rows: aggregates of seed groups and single runs, best first;
    the CSV's rows: each of those followed by the runs it aggregates)."""
    best = _rank_key(ranked_by)
    groups = [(_aggregate(g, metrics) if len(g) > 1 else g[0], g) for g in _groups(rows, keys)]
    groups.sort(key=lambda pair: best(pair[0]))
    shown = [row for row, _ in groups]
    listed = [r for row, members in groups for r in ([row, *sorted(members, key=best)] if len(members) > 1 else [row])]
    return shown, listed


def _title(ranked_by: str | None) -> str:
    if not ranked_by:
        return "# Leaderboard: not ranked (no known metric; pass report.sort=<metric>)"
    return f"# Leaderboard: ranked by `{ranked_by}` ({'higher' if _higher_is_better(ranked_by) else 'lower'} is better)"


def _summary(runs: list[_Run], aggregated: bool) -> str:
    text = f"{len(runs)} run{'s' * (len(runs) != 1)} below `{_shown(_common_parent([r.path for r in runs]))}`."
    if aggregated:
        text += " Runs that differ only in `seed` are aggregated: mean ± sample std (n runs)."
    return text


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def make_report(dirs: list[str | Path], out: Path, mix_protocols: bool = False, scalars: list[str] | None = None,
                sort: str | None = None) -> dict:
    """Write out/leaderboard.md, out/leaderboard.csv and out/plots/<scalar>.png for the runs below `dirs`.

    Returns {"leaderboard", "csv": paths, "plots": [paths], "ranked_by": metric or None, "markdown": text}.
    """
    runs = _read_runs(_find_runs(dirs))
    protocols = _protocol_columns(runs, mix_protocols)
    config_columns = [k for k in _differing([r.config for r in runs]) if k != SEED]
    protocol_columns = list(dict.fromkeys(k for p in protocols.values() for k in p))
    metrics = list(dict.fromkeys(k for r in runs for k in r.metrics))
    ranked_by = _ranking(metrics, sort)
    scalars = _default_scalars(runs) if scalars is None else list(scalars)
    _check_scalars(runs, scalars)

    keys = config_columns + protocol_columns
    per_run = _rows(runs, config_columns, protocols)
    shown, listed = _ranked(per_run, keys, metrics, ranked_by)
    aggregated = len(listed) > len(runs)
    markdown = _markdown(shown, ["run", "seeds", *keys, *metrics], metrics,
                         _title(ranked_by), _summary(runs, aggregated))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.md").write_text(markdown)
    csv_metrics = [c for m in metrics for c in ((m, f"std({m})") if aggregated else (m,))]
    _write_csv(out / "leaderboard.csv", listed, ["run", "seeds", *keys, *csv_metrics])
    plots = []
    if scalars:
        (out / "plots").mkdir(exist_ok=True)
        labels = _labels(runs, per_run, keys)
        plots = [_plot(runs, s, labels, out / "plots" / f"{s.replace('/', '_')}.png") for s in scalars]
    return {"leaderboard": out / "leaderboard.md", "csv": out / "leaderboard.csv", "plots": plots,
            "ranked_by": ranked_by, "markdown": markdown}
