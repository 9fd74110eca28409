"""Shared fixtures (helpers live in tests/helpers.py, importable as `helpers`)."""
from __future__ import annotations

import pytest
from hydra.core.global_hydra import GlobalHydra

from helpers import compose_config


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
