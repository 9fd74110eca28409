"""The gen-runner entrypoint: `gen-runner train|eval|sample [overrides...]`.

The command picks the primary config (configs/<command>.yaml); everything after it goes to Hydra,
so Hydra's own flags work too (--cfg job, --info defaults-tree, --multirun, --shell-completion).
`--help` and the checks of group options read the configs folder only: no Lightning import.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from gen_runner.configs import CONFIG_DIR, compose

__all__ = ["main", "CONFIG_DIR", "COMMANDS"]

COMMANDS = {
    "train": "train a model (GAN or flow) and save checkpoints, samples, TensorBoard logs",
    "eval": "score a checkpoint: nll, bits/dim, 2-D modes, FID/KID/IS (eval.features=), accuracy, reconstruction",
    "sample": "draw from a checkpoint in one of its model's modes (below): PNG, .pt, .npy",
    "report": "a leaderboard (markdown, CSV, scalar plots) of the runs below directories",
}
HIDDEN_GROUPS = ("base", "hydra")


def config_groups() -> dict[str, list[str]]:
    """Config groups and their options, read from the configs folder."""
    groups = {}
    for folder in sorted(p for p in CONFIG_DIR.rglob("*") if p.is_dir()):
        name = folder.relative_to(CONFIG_DIR).as_posix()
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if name.split("/")[0] not in HIDDEN_GROUPS and options:
            groups[name] = options
    return groups


@functools.cache
def model_target(path: Path) -> str | None:
    """The `_target_` class a model config file names, following its defaults list (read as text)."""
    import yaml

    node = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    if "_target_" in node:
        return node["_target_"]
    for entry in node.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            name = entry.split("@")[0]
            parent = (CONFIG_DIR / name.lstrip("/") if name.startswith("/") else path.parent / name).with_suffix(".yaml")
            if parent.is_file() and (found := model_target(parent)):
                return found
    return None


def sample_mode_lines() -> list[str]:
    """Which sample modes each model option has, from the declarations in the source (no import)."""
    from gen_runner.capabilities import static_sample_modes

    declared = static_sample_modes(CONFIG_DIR.parent / "gen_runner")
    by_model = {o: declared.get(model_target(CONFIG_DIR / "model" / f"{o}.yaml") or "", [])
                for o in config_groups().get("model", [])}
    by_model = {o: modes for o, modes in by_model.items() if modes}
    noise = [ms for ms in by_model.values() if "samples" in ms]  # image-to-image models have no noise modes
    common = [m for m in next(iter(noise), []) if all(m in ms for ms in noise)]
    extras: dict[tuple[str, ...], list[str]] = {}
    for option, modes in by_model.items():
        key = tuple(m for m in modes if m not in common) if "samples" in modes else ("only", *modes)
        extras.setdefault(key, []).append(option)
    lines = [f"  {'every generator':<24}{', '.join(common)}"]
    lines += [f"  {', '.join(options):<23} " + (f"only {', '.join(modes[1:])}" if modes[0] == "only" else
                                                 f"+ {', '.join(modes)}") for modes, options in extras.items() if modes]
    return lines


def truncation_lines() -> list[str]:
    """What `truncation=` means per model option, from the `truncation_means` in the source (no import)."""
    from gen_runner.capabilities import static_truncation

    declared = static_truncation(CONFIG_DIR.parent / "gen_runner")
    by_meaning: dict[str, list[str]] = {}
    for option in config_groups().get("model", []):
        if meaning := declared.get(model_target(CONFIG_DIR / "model" / f"{option}.yaml") or ""):
            by_meaning.setdefault(meaning, []).append(option)
    return [f"  {', '.join(options)}:\n      {meaning}" for meaning, options in by_meaning.items()]


def usage() -> str:
    lines = ["usage: gen-runner {train,eval,sample} [key=value ...] [hydra flags]",
             "       gen-runner report <run or multirun directory ...> [report.key=value ...]", "", "commands:"]
    lines += [f"  {name:<8}{text}" for name, text in COMMANDS.items()]
    lines += ["", "config groups (pick one option with group=option):"]
    groups = config_groups()
    width = max(map(len, groups)) + 2
    lines += [f"  {group:<{width}}{', '.join(options)}" for group, options in groups.items()]
    lines += ["", "sample modes (gen-runner sample mode=<mode> [mode.<option>=...]; options: configs/mode/<mode>.yaml):"]
    lines += sample_mode_lines()
    lines += ["", "truncation (gen-runner sample|eval truncation=<value>; models not listed have none):"]
    lines += truncation_lines()
    lines += [
        "",
        "examples:",
        "  gen-runner train                                   # DCGAN on 8x8 digits, about a minute on a CPU",
        "  gen-runner train model=realnvp data=moons trainer.max_steps=2000",
        "  gen-runner train experiment=gan_ring8 trainer=gpu",
        "  gen-runner eval ckpt_path=outputs/train/<run>/checkpoints/last.ckpt",
        "  gen-runner sample ckpt_path=<...>/last.ckpt num_samples=64 seed=1",
        "  gen-runner sample ckpt_path=<...>/last.ckpt mode=interpolate mode.steps=5",
        "  gen-runner train --multirun model=gan,dcgan seed=0,1,2",
        "  gen-runner eval ckpt_path=<...>/last.ckpt eval.features=classifier eval.features_ckpt=<classifier>.ckpt",
        "  gen-runner report outputs/multirun/train/<time>",
        "  gen-runner sample ckpt_path=<biggan run>/checkpoints/last.ckpt truncation=0.5 weights=raw",
        "  gen-runner sample ckpt_path=<pix2pix run>/checkpoints/last.ckpt mode=translate input=split=test",
        "  gen-runner train resume=outputs/train/<name>/<time>   # continue a stopped run in place",
        "  gen-runner train --multirun hydra/launcher=slurm trainer=ddp trainer.devices=4 seed=0,1,2   # [slurm] extra",
        "  gen-runner train --multirun hparams_search=gan_ring8  # Optuna: the [optuna] extra",
        "",
        "hydra flags after the command: --cfg job, --info defaults-tree, --multirun, --help",
        "full stack traces: HYDRA_FULL_ERROR=1",
    ]
    return "\n".join(lines)


def fail(message: str, code: int = 2) -> None:
    print(f"gen-runner: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def check_group_options(args: list[str]) -> None:
    """`model=nope` fails here, listing the valid options, before Hydra or Lightning start."""
    groups = config_groups()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key not in groups or value in ("", "null") or any(c in value for c in "${}()[]*"):
            continue
        for option in value.split(","):  # a --multirun sweep lists several
            if option not in groups[key]:
                fail(f"unknown {key} '{option}'; choose one of: {', '.join(groups[key])}")


def one_line(error: Exception) -> str:
    """Hydra's multi-line composition error as one line: its sentences, without the key dump."""
    skip = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")
    lines = []
    while error is not None:  # the error and its causes: "Error merging override x=abc" <- "could not convert"
        lines += [line.strip().rstrip(".") for line in str(error).splitlines()
                  if line.strip() and not line.strip().startswith(skip) and line.strip().rstrip(".") not in lines]
        error = error.__cause__
    return "; ".join(lines)


def check_config(command: str, args: list[str]) -> None:
    """Compose the run's config once before Hydra runs it, so that a wrong key, type or value fails in
    one line before any run directory exists; then check that the run directory can be written.
    Skipped for sweeps and Hydra's own flags, which Hydra reports itself."""
    if command == "report" or any(a.startswith("-") for a in args):
        return
    from gen_runner.schema import check_ranges

    try:
        cfg = compose(command, args)
        root = Path(str(cfg.paths.root))
        error = check_ranges(cfg)
    except Exception as e:  # Hydra's composition, override and type errors
        fail(one_line(e))
    if error:
        fail(error)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError("not writable")
    except OSError as e:
        fail(f"paths.root={root}: runs cannot be written there ({e.strerror or e}); "
             "set paths.root=<a writable directory>")


# Options that need an optional extra: (override prefix, module it needs, extra).
EXTRAS = [("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "slurm"),
          ("hparams_search=", "hydra_plugins.hydra_optuna_sweeper", "optuna")]


def check_extras(args: list[str]) -> None:
    """`hydra/launcher=slurm` or `hparams_search=...` without their packages: one line naming the extra."""
    import importlib.util

    for prefix, module, extra in EXTRAS:
        if any(a.startswith(prefix) for a in args) and importlib.util.find_spec(module) is None:
            fail(f"{next(a for a in args if a.startswith(prefix))} needs the {extra} extra: "
                 f"pip install 'gen-runner[{extra}]' (or pip install -e '.[{extra}]' in a clone)")


def check_slurm_shape(args: list[str]) -> None:
    """hydra/launcher=slurm starts one task per device (tasks_per_node = trainer.devices): a count, not
    -1 (all visible GPUs, which SLURM cannot know before the job runs)."""
    if not any(a.startswith("hydra/launcher=slurm") and a != "hydra/launcher=slurm_local" for a in args):
        return
    plain = [a for a in args if not a.startswith("-") and "=" in a and not any(c in a for c in ",()")]
    try:
        devices = compose("train", plain).trainer.get("devices")
    except Exception:  # composition errors: reported by Hydra itself
        devices = 1
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        fail(f"hydra/launcher=slurm starts one task per device, but trainer.devices={devices}: pass "
             "trainer.devices=<GPUs per node> (and trainer.num_nodes=<nodes>)")


def _complete_query() -> None:
    """Hydra's shell completion sees the line without the command word."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    if len(words) >= 2 and words[1] in COMMANDS:
        os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]]) + (" " if line.endswith(" ") else "")
        os.environ["COMP_POINT"] = str(len(os.environ["COMP_LINE"]))
        return words[1]
    # Completing the command itself.
    prefix = words[1] if len(words) == 2 and not line.endswith(" ") else ""
    print("\n".join(c for c in COMMANDS if c.startswith(prefix)))
    raise SystemExit(0)


# Known, harmless library chatter that would bury the run's own output.
QUIET = (
    r".*manual optimization and every_n_train_steps.*",  # we checkpoint after the step on purpose
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*does not have many workers.*",  # in-memory data: workers would only add overhead
    r".*val_dataloader` but have no `validation_step`.*",  # GANs validate through callbacks
    r".*smaller than the logging interval.*",  # small epochs: logging counts steps across epochs
)
# ... and Lightning's info lines that say nothing about this run.
QUIET_LOGS = ("was configured so 100% of the batches", "try installing [litlogger]")


def _run_task(command: str, cfg) -> None:
    import logging
    import warnings

    from hydra.core.hydra_config import HydraConfig

    from gen_runner.errors import UserError

    for pattern in QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    try:
        if command == "train":
            from gen_runner.tasks.train import train as task
        elif command == "eval":
            from gen_runner.tasks.evaluate import evaluate as task
        elif command == "sample":
            from gen_runner.tasks.sample import sample as task
        else:
            from gen_runner.tasks.report import report as task
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # Hydra's handlers print and file once
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: not any(q in record.getMessage() for q in QUIET_LOGS))
        result = task(cfg)
        if command == "train" and cfg.get("optimized_metric"):
            return result[cfg.optimized_metric]  # to a hyperparameter search (Hydra's Optuna sweeper)
        return result
    except UserError as e:
        remove_if_empty(Path(HydraConfig.get().runtime.output_dir))
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        fail(str(e), code=1)


def remove_if_empty(run: Path) -> None:
    """A failed run's directory, when it holds nothing but Hydra's own records (.hydra/, the log), is
    removed, and so are the folders above it that it leaves empty (up to the outputs root)."""
    import shutil

    if not run.is_dir() or any(p.name != ".hydra" and p.suffix != ".log" for p in run.iterdir()):
        return
    shutil.rmtree(run)
    for parent in list(run.parents)[:2]:  # outputs/<command>/<name>/<time>: the name and command folders
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-sc", "--shell-completion") for a in args) and any(a.startswith("query=") for a in args):
        command = _complete_query()
        args = [a for a in args if a not in COMMANDS]
    elif not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    else:
        command, args = args[0], args[1:]
    if command not in COMMANDS:
        fail(f"unknown command '{command}'; choose one of: {', '.join(COMMANDS)} (gen-runner --help)")
    if not CONFIG_DIR.is_dir():
        fail(f"configs not found at {CONFIG_DIR}: install gen-runner from a clone with `pip install -e .`")
    check_group_options(args)
    if command == "report":
        args = report_dirs_override(args)
    if command == "sample":
        args = quoted_input(args)

    import hydra

    from gen_runner.schema import register

    register()
    register_resolvers()
    if command == "train":
        check_extras(args)
        check_slurm_shape(args)
        from gen_runner.errors import UserError
        from gen_runner.tasks.in_place import resume_args
        from gen_runner.tasks.search import resumed_search_args

        try:
            args = resumed_search_args(resume_args(args), CONFIG_DIR)
        except UserError as e:
            fail(str(e))
    check_config(command, args)
    original = list(sys.argv)

    def task(cfg):
        sys.argv = original  # Lightning's DDP launcher re-runs this exact command line for each rank
        return _run_task(command, cfg)

    sys.argv = [original[0], *args]
    try:
        hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=command)(task)()
    finally:
        sys.argv = original


def quoted_input(args: list[str]) -> list[str]:
    """`input=split=test` (or a path with characters Hydra parses) -> a quoted Hydra value."""
    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return [f"input={quote(a[6:])}" if a.startswith("input=") and a[6:7] not in ("", "'", '"') else a for a in args]


def report_dirs_override(args: list[str]) -> list[str]:
    """`gen-runner report a b report.sort=fid` -> Hydra overrides with `report.dirs=['a','b']`."""
    takes_value = {"--cfg", "-c", "--info", "-i", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                   "--config-dir", "-cd"}
    dirs = [a for prev, a in zip(["", *args], args)
            if not a.startswith("-") and "=" not in a and prev not in takes_value]
    if not dirs:
        return args
    quoted = ",".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs)
    return [a for a in args if a not in dirs] + [f"report.dirs=[{quoted}]"]


def register_resolvers() -> None:
    """The config interpolations gen-runner adds: ${ckpt_run_name:path} and ${mul:a,b}."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("ckpt_run_name", ckpt_run_name, replace=True)
    OmegaConf.register_new_resolver("mul", lambda a, b: a * b, replace=True)


def ckpt_run_name(ckpt_path: str | None) -> str:
    """outputs/train/<name>/<time>/checkpoints/last.ckpt -> <name>, so eval and sample runs file
    themselves under the run they read."""
    if not ckpt_path:
        return "none"
    parts = Path(str(ckpt_path)).parts
    if len(parts) >= 4 and parts[-2] == "checkpoints":
        return parts[-4]
    return Path(str(ckpt_path)).stem


if __name__ == "__main__":
    main()
