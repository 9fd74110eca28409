"""The truncation trick's fidelity/variety trade-off (BigGAN, Brock et al. 2019, sec. 3.1 and fig. 2;
StyleGAN's psi, Karras et al. 2019): precision and recall (Kynkaanniemi et al. 2019) under a
classifier's features, at truncation 1.0, 0.8, 0.6, 0.4, 0.2 and without truncation, for each given
checkpoint (e.g. seeds of one model), as mean ± standard error over the checkpoints.

    python scripts/truncation_sweep.py CKPT [CKPT ...] --classifier <classifier run>/checkpoints/last.ckpt
        [--thresholds 1.0,0.8,0.6,0.4,0.2] [--num-samples 2000] [--split all] [--out DIR]

Runs one `gen-runner eval --multirun` over checkpoints x truncation values (eval.metrics=[fid, prdc];
conditional models add class_accuracy); the table lands in <out>/truncation_sweep.md. What a
value means is the model's (`gen-runner --help`): a threshold on N(0, 1) noise for BigGAN and every
GAN with Gaussian noise, psi in W for StyleGAN. Target: precision rises and recall falls, each
monotonically, as the value goes from 1.0 down to 0.2; the last lines say whether the means do.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from measure import mean_se

COLUMNS = ("precision", "recall", "density", "coverage", "class_accuracy", "fid")


def monotone(means: list[float], rising: bool) -> bool:
    """Each step no lower (rising) or no higher than the one before, and the last past the first."""
    sign = 1 if rising else -1
    return all(sign * (b - a) >= 0 for a, b in zip(means, means[1:])) and sign * (means[-1] - means[0]) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--classifier", type=Path, required=True, help="a model=classifier checkpoint of the data")
    parser.add_argument("--thresholds", default="1.0,0.8,0.6,0.4,0.2")
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--split", default="all", help="the real split compared against")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "truncation_sweep" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    values = ["null", *args.thresholds.split(",")]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gen_runner", "eval", "--multirun",
                    f"ckpt_path={','.join(str(c.resolve()) for c in args.checkpoints)}", f"truncation={','.join(values)}",
                    "eval.features=classifier", f"eval.features_ckpt={args.classifier.resolve()}",
                    "eval.metrics=[fid,prdc]", f"eval.num_samples={args.num_samples}", f"eval.split={args.split}",
                    f"eval.cache_dir={args.out / 'cache'}", f"seed={args.seed}", f"hydra.sweep.dir={args.out / 'eval'}"],
                   check=True)
    took = time.perf_counter() - start

    results: dict[str, list[dict]] = {}
    for path in sorted((args.out / "eval").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        results.setdefault(str(metrics["protocol"].get("truncation", "none")), []).append(metrics)
    rows = ["none", *(str(float(t)) for t in args.thresholds.split(","))]
    columns = [c for c in COLUMNS if any(c in m for runs in results.values() for m in runs)]
    lines = ["| truncation | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        runs = results.get(row, [])
        lines.append(f"| {row} | " + " | ".join(mean_se([r[c] for r in runs]) if runs else "-" for c in columns) + " |")
    swept = [statistics.mean(r["precision"] for r in results[row]) for row in rows[1:] if row in results]
    recall = [statistics.mean(r["recall"] for r in results[row]) for row in rows[1:] if row in results]
    any_run = next(iter(results.values()))[0]["protocol"]
    text = "\n".join([
        f"# Truncation sweep: model={any_run.get('model')}, data={any_run.get('data')}", "",
        f"{len(args.checkpoints)} checkpoint(s) (mean ± s.e. over them), {args.num_samples} samples each, "
        f"real split {args.split}, classifier features, seed {args.seed}; eval took {took / 60:.1f} min.", "",
        *lines, "",
        f"Precision rises monotonically from {rows[1]} to {rows[-1]}: {'yes' if monotone(swept, True) else 'no'}",
        f"Recall falls monotonically from {rows[1]} to {rows[-1]}: {'yes' if monotone(recall, False) else 'no'}", ""])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "truncation_sweep.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
