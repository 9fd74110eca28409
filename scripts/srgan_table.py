"""SRGAN against SRResNet against bicubic on sr4 (Ledig et al. 2017's perception-distortion claim:
SRResNet has the higher PSNR, SRGAN the better perceptual quality, here FID; bicubic worst on both).

Runs the project's CLI only, on the MNIST test set's digits at 28x28 (inputs 7x7):
1. two MNIST classifiers: seed 0 scores FID/KID (eval.features), seed 1 is SRGAN's content network
   (model.content_features_ckpt), so FID is not measured in the space SRGAN's loss matched;
2. for each seed: SRResNet (model.content=mse) for --steps steps, then SRGAN (content=features,
   adversarial weight 1e-3) initialised from it (model.init_ckpt, as the paper) for --steps more, and
   an SRResNet trained for SRGAN's total (2 x --steps) so that training length is not the difference;
   `gen-runner eval` of each on the test split, which also scores the bicubic baseline;
3. the table: mean +- standard error over the seeds (bicubic is deterministic: its spread is 0).

    nice -n 10 .venv/bin/python scripts/srgan_table.py --out outputs/srgan_table [--steps 300 --seeds 0 1 2]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cyclegan_table import ROOT, gen_runner, mean_se, metrics, train_once

MNIST = "/work/shared/data/mnist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "srgan_table")
    parser.add_argument("--mnist", default=MNIST, help="a folder of MNIST's IDX files (the test set is used)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--classifier-steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = ["data.source=mnist", f"data.root={args.mnist}", "data.split=test", "data.size=28"]

    classifiers = [train_once(f"clf_s{seed}", "experiment=classifier_mnist", f"data.root={args.mnist}",
                              "data.split=test", f"trainer.max_steps={args.classifier_steps}", f"seed={seed}",
                              cwd=out) / "checkpoints" / "last.ckpt" for seed in (0, 1)]
    score = ["eval.features=classifier", f"eval.features_ckpt={classifiers[0]}", "eval.metrics=[fid,kid]"]

    long = f"SRResNet, {2 * args.steps} steps (SRGAN's total)"
    rows: dict[str, list[dict]] = {"bicubic": [], "SRResNet (MSE)": [], long: [],
                                   "SRGAN (features + 1e-3 adversarial)": []}
    for seed in args.seeds:
        srresnet = train_once(f"srresnet_s{seed}", "experiment=srgan_sr4", *data, "model.content=mse",
                              f"trainer.max_steps={args.steps}", f"seed={seed}", cwd=out)
        srgan = train_once(f"srgan_s{seed}", "experiment=srgan_sr4", *data,
                           f"model.content_features_ckpt={classifiers[1]}",
                           f"model.init_ckpt={srresnet}/checkpoints/last.ckpt", f"trainer.max_steps={args.steps}",
                           f"seed={seed}", cwd=out)
        srresnet_long = train_once(f"srresnet2x_s{seed}", "experiment=srgan_sr4", *data, "model.content=mse",
                                   f"trainer.max_steps={2 * args.steps}", f"seed={seed}", cwd=out)
        for label, run in (("SRResNet (MSE)", srresnet), (long, srresnet_long),
                           ("SRGAN (features + 1e-3 adversarial)", srgan)):
            found = metrics(gen_runner("eval", f"ckpt_path={run}/checkpoints/last.ckpt", *score, cwd=out))
            rows[label].append(found)
            if label == "SRResNet (MSE)":
                rows["bicubic"].append({k.removeprefix("bicubic_"): v for k, v in found.items()
                                        if k.startswith("bicubic_")})
            print(f"seed {seed} {label}: psnr {found['psnr']:.2f}, ssim {found['ssim']:.3f}, fid {found['fid']:.3f} "
                  f"(bicubic: psnr {found['bicubic_psnr']:.2f}, fid {found['bicubic_fid']:.3f})", flush=True)

    keys = ["psnr", "ssim", "l1", "fid", "kid", "class_accuracy"]
    print(f"\nsr4 on MNIST test digits (7x7 -> 28x28), {args.steps} steps (SRGAN: {args.steps} more from the "
          f"SRResNet), seeds {args.seeds}; FID/KID in the features of an MNIST classifier other than SRGAN's")
    print("| model | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for label, found in rows.items():
        print(f"| {label} | " + " | ".join(mean_se([f[k] for f in found]) if k in found[0] else "-" for k in keys)
              + " |")


if __name__ == "__main__":
    main()
