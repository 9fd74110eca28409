"""Residual flows against the affine flows, small runs (issue 15's measured tables):

1. 2-D densities (gauss8, checkerboard): realnvp, glow, maf, iresnet, residual_flow and
   `residual_flow_truncated`: the Residual Flow with its Russian-roulette estimator replaced by the
   series truncated at 4 terms, the unbiased estimator's expected number (2 exact + E[N] = 2), all
   else equal: i-ResNet's biased estimator against the unbiased one at the same number of terms;
   `residual_flow_deep`: 20 blocks of 2 x 32 units (24.5k parameters, the budget + 6%) instead of
   5 wider ones, the papers' residual flows being deep (the toy models: 100 blocks).
   scripts/bench_flows.py's protocol (equal parameter budget, batch 256, Adam 1e-3 with cosine
   decay, 20k fresh test points; the residual flows' test NLL with the exact log-det), at a smaller
   step budget. Gap = test NLL - the true entropy; steps/s on one thread.
2. Digits bits/dim: `experiment=realnvp_digits` (at most its 600 steps) and
   `experiment=residual_flow_digits` (397k parameters against 395k), trained side by side for the
   same wall time (`--time`, `+trainer.max_time`), each scored by `gen-runner eval` on the test
   split (the residual flow with the exact log-det: eval.exact_logdet_max_dim=64).

    python scripts/resflow_table.py [--steps 600] [--seeds 0,1] [--jobs 4] [--part 2d|digits|all]
        [--models ...] [--time 00:05:00]

Tables with mean ± s.e. over seeds.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_flows  # noqa: E402

from gen_runner.flows.iresnet import residual_flow  # noqa: E402
from gen_runner.flows.transforms.residual import Residual  # noqa: E402

MODELS = ["realnvp", "glow", "maf", "iresnet", "residual_flow", "residual_flow_truncated", "residual_flow_deep"]
ROOT = Path(__file__).resolve().parents[1]
GEN_RUNNER = str(Path(sys.executable).with_name("gen-runner"))


def flow_2d(name: str) -> torch.nn.Module:
    if name == "residual_flow_deep":
        torch.manual_seed(0)
        return residual_flow((2,), vector={"num_layers": 20, "hidden": [32, 32]}, coeff=0.98)
    budget = bench_flows.count(bench_flows.our_flow("maf"))
    flow = bench_flows.equal_budget(name.removesuffix("_truncated"), budget)
    if name.endswith("_truncated"):
        for block in flow.modules():
            if isinstance(block, Residual):
                block.estimator, block.n_terms = "truncated", 4
    return flow


def job_2d(args: tuple[str, str, int, int]) -> tuple[str, str, int, dict]:
    name, dataset, seed, steps = args
    torch.set_num_threads(1)
    distribution = bench_flows.DATASETS[dataset]()
    train = distribution.sample(100_000, generator=torch.Generator().manual_seed(seed))
    test = distribution.sample(20_000, generator=torch.Generator().manual_seed(seed + 1))
    entropy = -distribution.log_prob(test).double().mean().item()
    result = bench_flows.run(flow_2d(name), train, test, steps, 256, seed)
    return name, dataset, seed, result | {"gap": result["nll"] - entropy}


def summary(values: list[float], digits: int = 3) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values) / math.sqrt(len(values)):.{digits}f}"


def table_2d(steps: int, seeds: list[int], jobs: int, models: list[str]) -> str:
    tasks = [(m, d, s, steps) for d in ("gauss8", "checkerboard") for m in models for s in seeds]
    with ProcessPoolExecutor(jobs) as pool:
        results = list(pool.map(job_2d, tasks))
    rows = [f"2-D densities, {steps} steps, batch 256, seeds {seeds}", "",
            "| data | flow | params | gap to entropy (nats) | steps/s |", "|---|---|---|---|---|"]
    for dataset in ("gauss8", "checkerboard"):
        for name in models:
            found = [r for n, d, _, r in results if n == name and d == dataset]
            rows.append(f"| {dataset} | {name} | {found[0]['params']:,} | {summary([r['gap'] for r in found])} | "
                        f"{summary([r['steps_per_s'] for r in found], 0)} |")
    return "\n".join(rows)


def cli(*args: str, cwd: Path) -> None:
    subprocess.run([GEN_RUNNER, *args], cwd=cwd, check=True, capture_output=True)


def job_digits(args: tuple[int, str]) -> dict:
    """Both flows on digits for one seed, side by side for the same wall time `limit` (H:M:S;
    RealNVP's preset also stops at its 600 steps), then each scored on the test split."""
    seed, limit = args
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        common = [f"seed={seed}", "callbacks=minimal", "logger=csv", "trainer.enable_model_summary=false",
                  f"+trainer.max_time=00:{limit}"]
        with ThreadPoolExecutor(2) as pool:  # subprocesses
            list(pool.map(cli_in, [("train", "experiment=realnvp_digits", "name=realnvp", *common),
                                   ("train", "experiment=residual_flow_digits", "name=resflow",
                                    "trainer.max_steps=100000", *common)], [cwd] * 2))
        for name in ("realnvp", "resflow"):
            run = next(cwd.glob(f"outputs/train/{name}/*"))
            cli("eval", f"ckpt_path={run}/checkpoints/last.ckpt", "eval.split=test", "eval.exact_logdet_max_dim=64",
                cwd=cwd)
            metrics = json.loads(next(cwd.glob(f"outputs/eval/{name}/*/metrics.json")).read_text())
            steps = torch.load(run / "checkpoints/last.ckpt", weights_only=False, map_location="cpu")["global_step"]
            out[name] = {"bpd": metrics["bpd"], "steps": steps}
    return out


def cli_in(args: tuple[str, ...], cwd: Path) -> None:
    cli(*args, cwd=cwd)


def table_digits(seeds: list[int], jobs: int, limit: str) -> str:
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(job_digits, [(seed, limit) for seed in seeds]))
    rows = [f"Digits 8x8 test bits/dim, {limit} (H:M:S) of training each, side by side, seeds {seeds}", "",
            "| flow | params | steps in the time | test bpd |", "|---|---|---|---|"]
    for name, params in (("realnvp", "395,027"), ("resflow", "397,120")):
        rows.append(f"| {name} | {params} | {summary([r[name]['steps'] for r in results], 0)} | "
                    f"{summary([r[name]['bpd'] for r in results])} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--part", choices=["2d", "digits", "all"], default="all")
    parser.add_argument("--models", default=",".join(MODELS), help="2-D rows")
    parser.add_argument("--time", default="00:05:00", help="digits: training wall time of each flow (H:M:S)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.part in ("2d", "all"):
        print(table_2d(args.steps, seeds, args.jobs, args.models.split(",")), flush=True)
    if args.part in ("digits", "all"):
        print(table_digits(seeds, args.jobs, args.time), flush=True)


if __name__ == "__main__":
    main()
