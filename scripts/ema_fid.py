"""Does the generator EMA help? FID of the EMA generator against the raw generator of the same run at
the same step (Karras et al. 2018, ProGAN; Yazici et al. 2019, "The Unusual Effectiveness of Averaging
in GAN Training"), over seeds, as mean ± standard error, under the project's digits classifier features.

    python scripts/ema_fid.py [--classifier <classifier run>/checkpoints/last.ckpt] [--seeds 0,1,2]
        [--steps 1500] [--every 500] [--decay 0.999] [--num-samples 2000] [--out DIR] [-- train overrides ...]

1. Without --classifier, trains the feature extractor: `gen-runner train experiment=classifier_digits`.
2. `gen-runner train --multirun experiment=dcgan_digits seed=<seeds> model.ema_decay=<decay>` (ProGAN's
   0.999 with the default warm-up), checkpoints every --every steps (all kept). Default nets: DCGAN at
   base_channels 32 (the preset's 64 quartered in FLOPs, to fit the CPU budget).
3. `gen-runner eval --multirun` over every checkpoint x eval.weights=ema,raw: FID against all 1,797
   digits (eval.split=all), --num-samples samples, the same eval seed for both.
The table (<out>/ema_fid.md): per step, FID(EMA), FID(raw) and the paired difference raw - EMA
(positive: the EMA is better), mean ± s.e. over seeds, and in how many seeds the EMA wins.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from measure import mean_se


def gen_runner(*args: str) -> None:
    # One intra-op thread: on a shared 2-core machine two threads per process thrash (tests/conftest.py).
    subprocess.run([sys.executable, "-m", "gen_runner", *args], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", type=Path, help="a model=classifier checkpoint of digits (default: train one)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=500, help="checkpoint (and evaluation) interval in steps")
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "ema_fid" / time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("overrides", nargs="*", help="further train overrides",
                        default=["model.generator.conv.base_channels=32", "model.discriminator.conv.base_channels=32"])
    args = parser.parse_args()
    out = args.out.resolve()
    timings = {}

    start = time.perf_counter()
    classifier = args.classifier
    if classifier is None:
        gen_runner("train", "experiment=classifier_digits", "callbacks=minimal", "logger=csv",
                   f"hydra.run.dir={out / 'classifier'}")
        classifier = out / "classifier" / "checkpoints" / "last.ckpt"
        timings["classifier"] = time.perf_counter() - start

    start = time.perf_counter()
    gen_runner("train", "--multirun", "experiment=dcgan_digits", f"seed={args.seeds}", f"model.ema_decay={args.decay}",
               f"trainer.max_steps={args.steps}", f"callbacks.checkpoint.every_n_train_steps={args.every}",
               f"callbacks.checkpoint.keep_last_k={args.steps // args.every + 1}", "callbacks.samples=null",
               "logger=csv", *args.overrides, f"hydra.sweep.dir={out / 'train'}")
    timings["train"] = time.perf_counter() - start

    start = time.perf_counter()
    checkpoints = sorted((out / "train").glob("*/checkpoints/step=*.ckpt"))
    gen_runner("eval", "--multirun", "ckpt_path=" + ",".join(f"'{c}'" for c in checkpoints), "eval.weights=ema,raw",
               "eval.features=classifier", f"eval.features_ckpt={Path(classifier).resolve()}", "eval.metrics=[fid]",
               f"eval.num_samples={args.num_samples}", "eval.split=all", f"eval.cache_dir={out / 'cache'}",
               "logger=csv", f"hydra.sweep.dir={out / 'eval'}")
    timings["eval"] = time.perf_counter() - start

    fid: dict[tuple[int, str], dict[str, float]] = {}  # (step, run) -> {weights: fid}
    for path in (out / "eval").glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        protocol = metrics["protocol"]
        run = Path(protocol["checkpoint"]).parents[1].name
        step = int(re.search(r"step=(\d+)", protocol["checkpoint"]).group(1))
        fid.setdefault((step, run), {})[protocol["weights"]] = metrics["fid"]
    lines = ["| step | FID, EMA G | FID, raw G | raw - EMA | EMA better |", "|---|---|---|---|---|"]
    for step in sorted({s for s, _ in fid}):
        runs = [v for (s, _), v in sorted(fid.items()) if s == step and {"ema", "raw"} <= v.keys()]
        ema, raw = [r["ema"] for r in runs], [r["raw"] for r in runs]
        wins = sum(e < r for e, r in zip(ema, raw))
        lines.append(f"| {step} | {mean_se(ema)} | {mean_se(raw)} | {mean_se([r - e for e, r in zip(ema, raw)])} | "
                     f"{wins}/{len(runs)} |")
    text = "\n".join([
        f"# Generator EMA against the raw generator: dcgan on digits, model.ema_decay={args.decay} (warm-up on)", "",
        f"Seeds {args.seeds} (mean ± s.e. over them); {args.steps} steps, batch 64; overrides {' '.join(args.overrides)}; "
        f"FID under the digits classifier's features, {args.num_samples} samples against all 1,797 digits.",
        "Wall-clock: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".", "", *lines, ""])
    (out / "ema_fid.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
