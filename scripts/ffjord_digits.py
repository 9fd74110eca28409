"""Digits bits/dim of FFJORD beside RealNVP at the same parameter count and the same compute time.

    python scripts/ffjord_digits.py [--seeds 0,1] [--realnvp-steps 600] [--out FILE]

Per seed, through the CLI, one thread each: `gen-runner train experiment=realnvp_digits` (its 600
steps, 395k parameters), then `experiment=ffjord_digits` (390k parameters), uncapped in steps,
stopped by SIGTERM (the runner's preemption stop: it finishes the step and saves the checkpoint)
once its process has used as much CPU time as RealNVP's whole training command did. CPU time, not
wall time, because the machine is shared: under load, wall time measures the neighbours. Then
`gen-runner eval` of each on the digits test split (180 images): bits/dim under uniform
dequantization, FFJORD's with the exact trace (`eval.exact_logdet_max_dim=64`), so that neither
figure is an estimate. Prints a markdown table, mean ± s.e. over seeds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint

CLI = [sys.executable, "-m", "gen_runner"]
COMMON = ["callbacks=minimal", "logger=csv", "trainer.enable_model_summary=false"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train(workdir: Path, experiment: str, seed: int, extra: list[str], cpu_budget: float | None = None):
    """(checkpoint, CPU seconds of the command); with `cpu_budget`, stopped by SIGTERM when it is spent."""
    command = [*CLI, "train", f"experiment={experiment}", f"seed={seed}", *COMMON, *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, cwd=workdir, env=os.environ | {"OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while cpu_budget is not None and process.poll() is None:
        try:
            if cpu_seconds(process.pid) >= cpu_budget:
                process.send_signal(signal.SIGTERM)
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.2)
    _, err = process.communicate()
    if process.returncode not in (0, 143):
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    run = max(workdir.glob(f"outputs/train/{experiment}/*"), key=lambda p: p.stat().st_mtime)
    return run / "checkpoints/last.ckpt", cpu


def evaluate(workdir: Path, ckpt: Path) -> dict:
    subprocess.run([*CLI, "eval", f"ckpt_path={ckpt}", "eval.exact_logdet_max_dim=64", "logger=csv"], cwd=workdir,
                   check=True, capture_output=True)
    run = max(workdir.glob("outputs/eval/*/*"), key=lambda p: p.stat().st_mtime)
    metrics = json.loads((run / "metrics.json").read_text())
    ckpt_data = load_checkpoint(ckpt)
    model = model_from_checkpoint(ckpt_data, "raw", "eval.weights")
    return {"bpd": metrics["bpd"], "trace": metrics["protocol"].get("trace", "-"), "step": ckpt_data["global_step"],
            "params": sum(p.numel() for p in model.parameters())}


def mean_se(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) / math.sqrt(len(values)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--realnvp-steps", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[dict]] = {"realnvp_digits": [], "ffjord_digits": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for seed in map(int, args.seeds.split(",")):
            ckpt, cpu = train(workdir, "realnvp_digits", seed, [f"trainer.max_steps={args.realnvp_steps}"])
            results["realnvp_digits"].append(evaluate(workdir, ckpt) | {"cpu": cpu})
            ckpt, used = train(workdir, "ffjord_digits", seed, ["trainer.max_steps=1000000"], cpu_budget=cpu)
            results["ffjord_digits"].append(evaluate(workdir, ckpt) | {"cpu": used})
            for name, found in results.items():
                print(name, seed, found[-1], flush=True)
    rows = ["| preset | params | steps | train CPU s (with start-up) | test bits/dim | trace at eval |",
            "|---|---|---|---|---|---|"]
    for name, found in results.items():
        steps = ", ".join(str(f["step"]) for f in found)
        cpus = ", ".join(f"{f['cpu']:.0f}" for f in found)
        rows.append(f"| {name} | {found[0]['params']:,} | {steps} | {cpus} | {mean_se([f['bpd'] for f in found])} | "
                    f"{found[0]['trace']} |")
    text = f"Digits 8x8 test bits/dim, seeds {args.seeds}, mean ± s.e.\n\n" + "\n".join(rows)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
