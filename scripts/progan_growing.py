"""Growing against not growing (Karras et al. 2018, sec. 3 and 6.1): ProGAN's FID when G and D grow
from 4x4 (the progan_digits preset: 4 -> 8 -> 16 over 16k images, 4k per phase, then 8k at 16x16)
against the same final network trained at 16x16 from the start (model.schedule.start_resolution=16),
on the same images-shown budget (1,500 steps of 16 = 24k images) and the same seeds.

FID in the feature space of the digits classifier trained at 16x16 (classifier_digits with
data.size=16 data.fit=resize), 2,000 samples against all 1,797 digits; the EMA generator (the
preset's 0.999) and the raw one. Every run goes through the project's CLI, one torch thread each,
under `nice -n 10`. Prints a markdown table, mean ± standard error over the seeds, and the CPU time.

    python scripts/progan_growing.py [--seeds 0,1,2] [--steps 1500] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from measure import gen_runner, mean_se

DIGITS16 = ["data.size=16", "data.fit=resize"]
ARMS = {"growing 4 -> 16": [], "fixed 16x16": ["model.schedule.start_resolution=16"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "progan_growing" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out.resolve()
    classifier = out / "classifier"
    if not (classifier / "checkpoints/last.ckpt").is_file():
        gen_runner("train", "experiment=classifier_digits", *DIGITS16, "callbacks=minimal",
                   f"hydra.run.dir={classifier}", nice=True)
    fid: dict[tuple[str, str], list[float]] = {}
    for seed in seeds:
        for arm, overrides in ARMS.items():
            run = out / "train" / f"{arm.split()[0]}-s{seed}"
            if not (run / "checkpoints/last.ckpt").is_file():
                gen_runner("train", "experiment=progan_digits", *overrides, f"seed={seed}",
                           f"trainer.max_steps={args.steps}", "callbacks=minimal", "logger=csv",
                           f"hydra.run.dir={run}", nice=True)
            for weights in ("ema", "raw"):
                evaluated = out / "eval" / f"{run.name}-{weights}"
                if not (evaluated / "metrics.json").is_file():
                    gen_runner("eval", f"ckpt_path={run / 'checkpoints/last.ckpt'}", "eval.features=classifier",
                               f"eval.features_ckpt={classifier / 'checkpoints/last.ckpt'}", "eval.metrics=[fid]",
                               "eval.split=all", "eval.num_samples=2000", f"eval.weights={weights}",
                               f"eval.cache_dir={out / 'cache'}", f"hydra.run.dir={evaluated}", nice=True)
                fid.setdefault((arm, weights), []).append(json.loads((evaluated / "metrics.json").read_text())["fid"])
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = ["| schedule | FID, EMA G | FID, raw G |", "|---|---|---|"]
    lines += [f"| {arm} | {mean_se(fid[arm, 'ema'], 2)} | {mean_se(fid[arm, 'raw'], 2)} |" for arm in ARMS]
    lines.append(f"\nDigits at 16x16, {args.steps} steps of 16 images, seeds {args.seeds}; mean ± s.e.; "
                 f"{(cpu.ru_utime + cpu.ru_stime) / 60:.1f} CPU-minutes in this invocation.")
    text = "\n".join(lines)
    (out / "progan_growing.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
