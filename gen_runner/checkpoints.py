"""Reading gen-runner checkpoints: the file (`torch.load(weights_only=True)`, so no pickled object
runs), its run record, and the model rebuilt from the record alone.

A checkpoint holds `checkpoint["gen_runner"] = {"family", "data", "config", "choices"}` as plain
Python containers (gen_runner/base.py writes it), so `eval` and `sample` need nothing but the file.
A checkpoint is untrusted input: the configs it carries are checked (gen_runner/instantiate.py's
`check_trusted`) before anything in them is called.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from gen_runner.errors import UserError
from gen_runner.finite import nonfinite
from gen_runner.instantiate import build_model, check_trusted

__all__ = ["load_checkpoint", "model_from_checkpoint", "check_finite"]


def load_checkpoint(path: str | os.PathLike | None) -> dict:
    """A gen-runner checkpoint, read with weights_only=True, its model and data configs checked
    (`check_trusted`); one clear line for anything else."""
    if path in (None, "", "???"):
        raise UserError("this command needs a checkpoint: pass ckpt_path=<run directory>/checkpoints/last.ckpt")
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoints" / "last.ckpt"
        raise UserError(f"ckpt_path={path} is a directory; pass a checkpoint file, e.g. ckpt_path="
                        f"{inside if inside.is_file() else path / 'last.ckpt'}")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}; pass ckpt_path=<run directory>/checkpoints/last.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, pickled objects we refuse to run
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}): it is corrupt or not a "
                        "PyTorch checkpoint; pick another, e.g. the run's checkpoints/last.ckpt") from e
    info = ckpt.get("gen_runner") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a gen-runner checkpoint (no run config inside); "
                        "pass one written by `gen-runner train`")
    for part in ("model", "data"):  # what eval and sample rebuild
        check_trusted(info["config"].get(part), f"checkpoint {path}")
    check_finite(ckpt, path)
    return ckpt


def check_finite(ckpt: dict, path: str | os.PathLike) -> None:
    """Refuse, in one line, a checkpoint whose weights hold inf/NaN: every sample and score from it
    would be NaN. (gen-runner train never writes one; an older version or another tool may have.)"""
    state = ckpt.get("state_dict")
    if bad := nonfinite(state.items() if isinstance(state, dict) else []):
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise UserError(f"checkpoint {path} holds non-finite weights (inf/NaN in {shown}): its run diverged; "
                        "use an earlier checkpoint of that run (checkpoints/step=<N>.ckpt) or train again "
                        "with a lower learning rate")


def model_from_checkpoint(ckpt: dict, weights: str = "ema", key: str = "weights"):
    """The model of a checkpoint from `load_checkpoint`, with its weights, in eval mode, on the CPU.
    A GAN's generator holds its moving average's weights where the checkpoint has one (`weights="ema"`)
    or the raw ones ("raw"); `model.weights` says which (gen_runner/gans/ema.py). `key`: the option's name."""
    if weights not in ("ema", "raw"):
        raise UserError(f"{key}={weights}: pass {key}=ema (the generator's moving average, where the checkpoint "
                        f"has one) or {key}=raw")
    info = ckpt["gen_runner"]
    model = build_model(info["config"]["model"], info["data"], what="model (from the checkpoint)")
    model.load_state_dict(ckpt["state_dict"])
    model.weights = model.use_weights(weights)
    return model.eval()

