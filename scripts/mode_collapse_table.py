"""The PacGAN/VEEGAN 2-D mode-collapse table: {gan, unrolled_gan, veegan, pacgan m=2,3,4,
mbd_gan, wgan_gp} x {ring8, grid25} x seeds, trained as one Hydra multirun (experiment presets
modes_ring8 / modes_grid25: PacGAN's nets, optimizer and data for every variant), evaluated on
2,500 samples each (gen-runner eval), tabulated as mean +- standard error over seeds beside the
published numbers.

    python scripts/mode_collapse_table.py [--budget quick|full] [--seeds 0,1,2] [--jobs 2] [--out DIR] [--steps N]
        [--models gan,pacgan2,...] [--datasets ring8,grid25] [--include DIR ...]

`--include` folds the evaluated runs of earlier invocations (their --out directories) into the
table, so a grid can be trained in parts (other seeds, other models) and tabulated once
(`--tabulate`: train nothing, only tabulate the included directories).

`--jobs N` trains N runs at once in separate processes (Hydra's joblib launcher), one torch thread
each: on 2 cores that is about 1.6x the throughput of one run with two threads. The table lands in
<out>/mode_collapse_table.md; the run directories under <out>/train and <out>/eval.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from measure import mean_se

MODELS = ["gan", "unrolled_gan", "veegan", "pacgan2", "pacgan3", "pacgan4", "mbd_gan", "wgan_gp"]
DATASETS = ["ring8", "grid25"]
# Published (modes, high-quality %, reverse KL); None where the paper does not report it.
PUBLISHED = {
    ("grid25", "gan"): [("PacGAN T1", 17.3, 94.8, 0.70), ("VEEGAN T1", 3.3, 0.5, None)],
    ("grid25", "pacgan2"): [("PacGAN T1", 23.8, 91.3, 0.13)],
    ("grid25", "pacgan3"): [("PacGAN T1", 24.6, 94.2, 0.06)],
    ("grid25", "pacgan4"): [("PacGAN T1", 24.8, 93.6, 0.04)],
    ("grid25", "unrolled_gan"): [("VEEGAN T1", 23.6, 16.0, None)],
    ("grid25", "veegan"): [("VEEGAN T1", 24.6, 40.0, None)],
    ("ring8", "gan"): [("PacGAN T1", 6.3, 98.2, 0.45), ("VEEGAN T1", 1.0, 99.3, None)],
    ("ring8", "pacgan2"): [("PacGAN T1", 7.9, 95.6, 0.07)],
    ("ring8", "unrolled_gan"): [("VEEGAN T1", 7.6, 35.6, None)],
    ("ring8", "veegan"): [("VEEGAN T1", 8.0, 52.9, None)],
}
METRICS = ("modes", "high_quality_pct", "reverse_kl")


def gen_runner(*args: str, threads: int | None = None) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-m", "gen_runner", *args], check=True, env=env)


def table(results: dict[tuple[str, str], list[dict]], models: list[str], datasets: list[str]) -> str:
    lines = ["| data | model | modes | high quality % | reverse KL | published (modes / HQ % / rKL) |",
             "|---|---|---|---|---|---|"]
    for ds in datasets:
        for model in models:
            runs = results.get((ds, model), [])
            ours = [mean_se([r[m] for r in runs], 2) if runs else "-" for m in METRICS]
            published = "; ".join(f"{src}: {m} / {hq} / {'-' if kl is None else kl}"
                                  for src, m, hq, kl in PUBLISHED.get((ds, model), [])) or "-"
            lines.append(f"| {ds} | {model} | {' | '.join(ours)} | {published} |")
    counts = sorted({len(v) for v in results.values()})
    lines.append(f"\nOurs: mean ± standard error over {'/'.join(map(str, counts))} seed(s), 2,500 samples each.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=["quick", "full"], default="quick")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steps", type=int, help="override the budget's step count (smoke tests)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--include", type=Path, nargs="*", default=[], help="earlier --out directories to tabulate too")
    parser.add_argument("--tabulate", action="store_true", help="train nothing: tabulate the --include directories")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "mode_collapse" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    models, datasets = args.models.split(","), args.datasets.split(",")
    trained = None
    if not args.tabulate:
        trained = train_and_evaluate(args, models, datasets)
    results: dict[tuple[str, str], list[dict]] = {}
    outs = args.include if args.tabulate else [args.out, *args.include]
    for path in sorted(p for out in outs for p in (out / "eval").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        protocol = metrics["protocol"]
        results.setdefault((protocol["data"], protocol["model"]), []).append(metrics)
    text = (f"# Mode collapse on the 2-D mixtures ({args.budget} budget)\n\n" + table(results, models, datasets)
            + ("\n" if trained is None else f"\nTraining took {trained / 60:.1f} min with {args.jobs} parallel job(s).\n"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mode_collapse_table.md").write_text(text)
    print(text)


def train_and_evaluate(args, models: list[str], datasets: list[str]) -> float:
    """Train the grid as one multirun and evaluate every checkpoint; the training time in seconds."""
    start = time.perf_counter()
    gen_runner("train", "--multirun", f"experiment={','.join('modes_' + d for d in datasets)}",
               f"model={','.join(models)}", f"seed={args.seeds}",
               f"budget={args.budget}", "callbacks=minimal", "hydra/launcher=joblib",
               f"hydra.launcher.n_jobs={args.jobs}", f"hydra.sweep.dir={args.out / 'train'}",
               *([f"trainer.max_steps={args.steps}"] if args.steps else []), threads=1 if args.jobs > 1 else None)
    trained = time.perf_counter() - start
    checkpoints = sorted(str(p) for p in (args.out / "train").glob("*/checkpoints/last.ckpt"))
    gen_runner("eval", "--multirun", f"ckpt_path={','.join(checkpoints)}", f"hydra.sweep.dir={args.out / 'eval'}")
    return trained


if __name__ == "__main__":
    main()
