"""The high-resolution GANs beside dcgan and wgan_gp at the same wall-clock budget: one table of FID,
KID, precision and recall (Kynkaanniemi et al. 2019) under the project's digits classifier features,
with BigGAN's class accuracy (the classifier's accuracy on the class each sample was drawn for).

    python scripts/gan_quality.py [--minutes 12] [--seeds 0] [--models dcgan,wgan_gp,progan,stylegan,biggan]
        [--classifier <classifier run>/checkpoints/last.ckpt] [--num-samples 2000] [--out DIR]

Every model trains on 8x8 digits resized to 16x16 (data.size=16 data.fit=resize), from its preset
where it has one (progan_digits, stylegan_digits, biggan_digits, dcgan_digits; wgan_gp: model=wgan_gp
on the same data), for --minutes of wall-clock time (Lightning's trainer.max_time; max_steps out of reach).
All runs of a seed train at once, one intra-op thread each, so they share the machine's cores alike
whatever else runs on it; the table records the CPU seconds and the steps each run got, which is
the budget it actually had. Eval: the last checkpoint (the EMA generator where the model keeps one:
progan, stylegan), --num-samples samples against all 1,797 digits (eval.split=all). The table lands in
<out>/gan_quality.md, mean ± s.e. over seeds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from measure import mean_se

DIGITS16 = ["data.size=16", "data.fit=resize"]
PRESETS = {"dcgan": ["experiment=dcgan_digits"], "wgan_gp": ["model=wgan_gp", "data=digits"],
           "progan": ["experiment=progan_digits"], "stylegan": ["experiment=stylegan_digits"],
           "biggan": ["experiment=biggan_digits"]}
COLUMNS = ("fid", "kid", "precision", "recall", "class_accuracy")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gen_runner", *args]


def train_together(runs: dict[str, list[str]], out: Path) -> dict[str, float]:
    """Start every run, wait for all; each run's CPU seconds (user + system, from wait4)."""
    procs = {}
    for name, args in runs.items():
        log = open(out / f"{name}.log", "w")
        procs[subprocess.Popen(command(*args), env=ENV, stdout=log, stderr=subprocess.STDOUT).pid] = name
    cpu = {}
    while procs:
        pid, status, usage = os.wait4(-1, 0)
        name = procs.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name} failed: see {out / (name + '.log')}")
        cpu[name] = usage.ru_utime + usage.ru_stime
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0, help="wall-clock training budget per run")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--models", default=",".join(PRESETS))
    parser.add_argument("--classifier", type=Path, help="a model=classifier checkpoint of 16x16 digits")
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "gan_quality" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    models, seeds = args.models.split(","), args.seeds.split(",")
    classifier = args.classifier
    if classifier is None:
        classifier = out / "classifier" / "checkpoints" / "last.ckpt"
        if not classifier.is_file():
            subprocess.run(command("train", "experiment=classifier_digits", *DIGITS16, "callbacks=minimal",
                                   "logger=csv", f"hydra.run.dir={classifier.parent.parent}"), env=ENV, check=True)
    seconds = int(args.minutes * 60)
    budget = f"00:00:{seconds // 60:02d}:{seconds % 60:02d}"
    cpu, steps, metrics = {}, {}, {}
    for seed in seeds:
        runs = {f"{m}-{seed}": ["train", *PRESETS[m], *DIGITS16, f"seed={seed}", "trainer.max_steps=10000000",
                                f"+trainer.max_time={budget}", "callbacks.samples=null", "logger=csv",
                                f"hydra.run.dir={out / 'train' / f'{m}-{seed}'}"]
                for m in models if not (out / "train" / f"{m}-{seed}" / "metrics.json").is_file()}
        cpu.update(train_together(runs, out) if runs else {})
        record = out / "cpu_seconds.json"  # kept across invocations: finished runs are not retrained
        cpu = {**(json.loads(record.read_text()) if record.is_file() else {}), **cpu}
        record.write_text(json.dumps(cpu))
        for m in models:
            run = out / "train" / f"{m}-{seed}"
            steps[m, seed] = json.loads((run / "metrics.json").read_text())["protocol"]["steps"]
            evaluated = out / "eval" / f"{m}-{seed}"
            if not (evaluated / "metrics.json").is_file():
                subprocess.run(command("eval", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                                       "eval.features=classifier", f"eval.features_ckpt={classifier}",
                                       "eval.metrics=[fid,kid,prdc]", f"eval.num_samples={args.num_samples}",
                                       "eval.split=all", f"eval.cache_dir={out / 'cache'}", "logger=csv",
                                       f"hydra.run.dir={evaluated}"), env=ENV, check=True)
            metrics[m, seed] = json.loads((evaluated / "metrics.json").read_text())
    lines = [f"Digits 16x16, {args.minutes:g} wall-clock minutes per run (all of a seed at once), seeds {args.seeds}, "
             f"{args.num_samples} samples vs all 1,797 digits, classifier features", "",
             "| model | steps | CPU s | " + " | ".join(COLUMNS) + " |", "|---" * (3 + len(COLUMNS)) + "|"]
    for m in models:
        cells = [mean_se([float(steps[m, s]) for s in seeds], 0), mean_se([cpu.get(f"{m}-{s}", math.nan) for s in seeds], 0)]
        cells += [mean_se([metrics[m, s][c] for s in seeds if c in metrics[m, s]]) for c in COLUMNS]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    (out / "gan_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
