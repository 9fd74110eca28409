"""`gen-runner report <dirs>`: a leaderboard (markdown, CSV) and scalar plots of the runs below directories."""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from gen_runner.report import make_report
from gen_runner.tasks import common

__all__ = ["report"]


def report(cfg: DictConfig) -> dict:
    opts = cfg.report
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # its event-file reader logs each file at INFO
    out = common.run_dir()
    written = make_report(list(opts.dirs), out, mix_protocols=opts.mix_protocols,
                          scalars=list(opts.scalars) if opts.scalars is not None else None, sort=opts.sort)
    print(written["markdown"])
    plots = out / "plots" if written["plots"] else "none (no TensorBoard scalar that all runs logged)"
    common.finish({"Leaderboard": written["leaderboard"], "CSV": written["csv"], "Plots": plots}, out)
    return written
