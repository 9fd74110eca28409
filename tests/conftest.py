"""Shared fixtures (helpers live in tests/helpers.py, importable as `helpers`).

The tests' tensors are small: one intra-op thread per process is faster than two, and it keeps
a busy 2-core machine from thrashing (a 100-step classifier run: 3.2 s with 1 thread, 53 s with 2
while other processes ran). Subprocesses inherit it through OMP_NUM_THREADS."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hydra.core.global_hydra import GlobalHydra

from helpers import compose_config  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def make_config(tmp_path):
    """make_config(command, *overrides) -> a job config whose run directory is below tmp_path."""
    counter = iter(range(1000))

    def make(command: str, *overrides: str):
        out = tmp_path / f"{command}{next(counter)}"
        out.mkdir()
        return compose_config(command, list(overrides), out)

    yield make
    GlobalHydra.instance().clear()
