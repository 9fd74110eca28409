"""What the measurement scripts share: running gen-runner's own CLI in a child process, and the
mean ± standard error over seeds that every table reports. `python scripts/<name>.py` puts this
folder on sys.path, so a script imports it as `from measure import gen_runner, mean_se`."""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

# One intra-op thread per run: on a shared 2-core machine two threads per process thrash.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def gen_runner(*args: str, cwd: Path | None = None, nice: bool = False, quiet: bool = True) -> Path | None:
    """Run `gen-runner <args>` and return the run directory it reports last (None if it reports none).
    `nice`: at lower priority; `quiet`: the output is kept and shown only if the command fails."""
    command = [*(["nice", "-n", "10"] if nice else []), sys.executable, "-m", "gen_runner", *args]
    proc = subprocess.run(command, cwd=cwd, env=ENV, capture_output=quiet, text=True)
    if proc.returncode:
        shown = f":\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}" if quiet else ""
        sys.exit(f"gen-runner {' '.join(args)} failed{shown}")
    lines = (proc.stdout or "").splitlines()
    reported = [line.removeprefix("Run directory:").strip() for line in lines if line.startswith("Run directory:")]
    return (Path(cwd or ".") / reported[-1]) if reported else None


def mean_se(values: list[float], digits: int = 3, percent: bool = False) -> str:
    """'mean ± s.e.' over seeds (the value alone for one seed), to `digits` decimals; `percent`: x 100 and a % sign."""
    scale, sign = (100, "%") if percent else (1, "")
    if not values:
        return "-"
    if len(values) == 1:
        return f"{scale * values[0]:.{digits}f}{sign}"
    mean, se = statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))
    return f"{scale * mean:.{digits}f} ± {scale * se:.{digits}f}{sign}"
