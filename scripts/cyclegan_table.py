"""CycleGAN with and without the cycle loss on digits2thick: class preservation (Zhu et al. 2017's
claim that the cycle loss keeps the content; the lecture's "the cycle loss preserves class").

Runs the project's CLI only. Steps:
1. two domain classifiers (model=classifier on data=tensor_file) from digits2thick's training halves:
   B (thickened, inverted digits) for FID/KID and the class accuracy of G(a), A for those of F(b);
   the B classifier's accuracy on real domain-B test digits is the reference;
2. for each seed, `experiment=cyclegan_digits2thick` with model.cycle_weight=10 (the paper) and 0
   (the ablation: adversarial losses alone, identity off with it), then `gen-runner eval` on the
   test split with both classifiers;
3. the table: mean +- standard error over the seeds.

    nice -n 10 .venv/bin/python scripts/cyclegan_table.py --out outputs/cyclegan_table [--steps 400 --seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from measure import mean_se

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "gen_runner"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
# The preset's nets at half width and batch 8, to fit the CPU budget (see --help).
SMALL = ["model.generator.base_channels=8", "model.discriminator.base_channels=8", "data.batch_size=8"]


def gen_runner(*args: str, cwd: Path) -> Path:
    """Run `gen-runner <args>`; its run directory."""
    quiet = ["callbacks=minimal", "logger=csv"] if args[0] == "train" else ["logger=csv"]
    proc = subprocess.run([*CLI, *args, *quiet], cwd=cwd, env=ENV, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"gen-runner {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return cwd / proc.stdout.strip().splitlines()[-1].removeprefix("Run directory: ")


def train_once(name: str, *args: str, cwd: Path) -> Path:
    """`gen-runner train <args> name=<name>`'s run directory; a finished run of that name is reused
    (a rerun of the script picks up where it stopped)."""
    done = sorted((cwd / "outputs" / "train" / name).glob("*/checkpoints/last.ckpt"))
    return done[-1].parents[1] if done else gen_runner("train", *args, f"name={name}", cwd=cwd)


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def domain_files(out: Path) -> dict[str, Path]:
    """digits2thick's domain-A and domain-B training images and domain-B test images as .npz files."""
    sys.path.insert(0, str(ROOT))
    from gen_runner.instantiate import build_datamodule

    dm = build_datamodule({"_target_": "gen_runner.data.datamodule.ThickDigitsDataModule", "size": 16}, 0)
    files = {}
    for name, split, domain in (("A_train", "train", "a"), ("B_train", "train", "b"), ("B_test", "test", "b")):
        x, y = getattr(dm.splits[split], domain)
        files[name] = out / f"{name}.npz"
        np.savez(files[name], x=x.numpy(), y=y.numpy())
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "cyclegan_table")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--classifier-steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    files = domain_files(out)
    classifiers = {d: train_once(f"clf_{d}", "model=classifier", "data=tensor_file", f"data.path={files[f'{d}_train']}",
                                 "data.num_levels=17", f"trainer.max_steps={args.classifier_steps}",
                                 cwd=out) / "checkpoints" / "last.ckpt" for d in ("A", "B")}
    reference = metrics(gen_runner("eval", f"ckpt_path={classifiers['B']}", "data=tensor_file",
                                   f"data.path={files['B_test']}", "data.num_levels=17", "eval.split=all", cwd=out))
    print(f"classifier of domain B on real domain-B test digits: accuracy {reference['accuracy']:.3f}", flush=True)

    rows: dict[str, list[dict]] = {"cycle (lambda = 10)": [], "no cycle (lambda = 0)": []}
    for seed in args.seeds:
        for label, weight in (("cycle (lambda = 10)", 10), ("no cycle (lambda = 0)", 0)):
            run = train_once(f"cyclegan_w{weight}_s{seed}", "experiment=cyclegan_digits2thick",
                             f"model.cycle_weight={weight}", *SMALL, f"trainer.max_steps={args.steps}", f"seed={seed}",
                             cwd=out)
            found = metrics(gen_runner("eval", f"ckpt_path={run}/checkpoints/last.ckpt", "eval.features=classifier",
                                       f"eval.features_ckpt={classifiers['B']}",
                                       f"eval.features_ckpt_a={classifiers['A']}", "eval.metrics=[fid,kid]", cwd=out))
            rows[label].append(found)
            print(f"seed {seed} {label}: class_accuracy {found['class_accuracy']:.3f}, fid {found['fid']:.2f}, "
                  f"class_accuracy_BtoA {found['class_accuracy_BtoA']:.3f}, cycle_l1_A {found['cycle_l1_A']:.3f}",
                  flush=True)

    keys = ["class_accuracy", "fid", "kid", "class_accuracy_BtoA", "fid_BtoA", "cycle_l1_A", "cycle_l1_B"]
    print(f"\nCycleGAN on digits2thick (16x16), {args.steps} steps, seeds {args.seeds}; reference: the B classifier "
          f"on real domain-B test digits, {reference['accuracy']:.3f}")
    print("| model | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for label, found in rows.items():
        print(f"| {label} | " + " | ".join(mean_se([f[k] for f in found]) for k in keys) + " |")
    with_cycle = np.mean([f["class_accuracy"] for f in rows["cycle (lambda = 10)"]])
    print(f"\nwith cycle / reference = {with_cycle / reference['accuracy']:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
