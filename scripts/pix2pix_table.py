"""pix2pix's claims on edges2digits, measured (Isola et al. 2017, tables 1 and 3, on a CPU scale).

1. The objective (table 1): L1 alone (model.adversarial_weight=0), cGAN alone (model.l1_weight=0)
   and L1 + cGAN (the default, lambda = 100), at 16x16 with the 16x16 PatchGAN. The paper: L1 alone
   has the lowest L1 error but blurry, unrealistic outputs; L1 + cGAN is sharper. Target: FID(L1 +
   cGAN) < FID(L1) in every seed.
2. The discriminator's receptive field (table 3): 1x1 PixelGAN, 16x16 PatchGAN and a D covering the
   full image (patch=full: 34x34 at 32x32), with L1 + cGAN, at 32x32 (data.size=32).

Every model: the pix2pix_edges2digits preset with 16 base channels in G and D, `--steps` steps of
64 images. Scores on the test split (180 pairs): the L1 error against the targets (images in
[0, 1]), FID and KID of the outputs against the real targets and the class accuracy of the outputs
(class preserved), all in the feature space of the digits classifier trained at 16x16
(classifier_digits, data.size=16). Every run goes through the project's CLI, one torch thread each,
under `nice -n 10`. Prints markdown tables, mean ± standard error over the seeds, and the CPU time.

    python scripts/pix2pix_table.py [--seeds 0,1,2] [--steps 500] [--ablation-seeds 0,1,2] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from measure import gen_runner, mean_se

SMALL = ["model.generator.base_channels=16", "model.discriminator.base_channels=16", "callbacks=minimal", "~logger"]
# arm -> (run name, overrides)
OBJECTIVES = {"L1 alone": ("l1", ["model.adversarial_weight=0"]), "cGAN alone": ("cgan", ["model.l1_weight=0"]),
              "L1 + cGAN": ("l1_cgan", [])}
PATCHES = {"1x1 (PixelGAN)": ("patch1", ["model.discriminator.patch=1"]),
           "16x16 (PatchGAN)": ("patch16", ["model.discriminator.patch=16"]),
           "full image (34x34)": ("patchfull", ["model.discriminator.patch=full"])}
METRICS = ("l1", "fid", "kid", "class_accuracy")


def classifier(out: Path) -> Path:
    """The digits feature classifier at 16x16 (trained once per output folder)."""
    run = out / "classifier"
    if not (run / "checkpoints/last.ckpt").is_file():
        gen_runner("train", "experiment=classifier_digits", "data.size=16", "data.fit=resize", "callbacks=minimal",
                   "~logger", f"hydra.run.dir={run}", nice=True)
    return run / "checkpoints/last.ckpt"


def train_and_score(out: Path, name: str, train: list[str], features: Path, num_samples: int) -> dict:
    """Train (unless done), then eval on the test split; the metrics."""
    run, evaluated = out / "train" / name, out / "eval" / name
    if not (run / "checkpoints/last.ckpt").is_file():
        gen_runner("train", *train, f"hydra.run.dir={run}", nice=True)
    if not (evaluated / "metrics.json").is_file():
        gen_runner("eval", f"ckpt_path={run / 'checkpoints/last.ckpt'}", "eval.features=classifier",
                   f"eval.features_ckpt={features}", "eval.metrics=[fid,kid]", f"eval.num_samples={num_samples}",
                   "eval.kid_subset_size=100", f"eval.cache_dir={out / 'cache'}", "~logger",
                   f"hydra.run.dir={evaluated}", nice=True)
    return json.loads((evaluated / "metrics.json").read_text())


def table(rows: dict[str, list[dict]], first: str) -> list[str]:
    lines = [f"| {first} | L1 error | FID | KID x 100 | class accuracy |", "|---|---|---|---|---|"]
    for arm, found in rows.items():
        cells = [mean_se([f["l1"] for f in found], 3), mean_se([f["fid"] for f in found], 2),
                 mean_se([100 * f["kid"] for f in found], 2), mean_se([f["class_accuracy"] for f in found], 3)]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ablation-seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "pix2pix_table" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    out = args.out.resolve()
    features = classifier(out)
    base = ["experiment=pix2pix_edges2digits", f"trainer.max_steps={args.steps}", *SMALL]

    objectives: dict[str, list[dict]] = {arm: [] for arm in OBJECTIVES}
    for seed in (int(s) for s in args.seeds.split(",")):
        for arm, (name, overrides) in OBJECTIVES.items():
            objectives[arm].append(train_and_score(out, f"{name}-s{seed}", [*base, *overrides, f"seed={seed}"],
                                                   features, 180))
    wins = [l1_cgan["fid"] < l1["fid"] for l1, l1_cgan in zip(objectives["L1 alone"], objectives["L1 + cGAN"])]

    patches: dict[str, list[dict]] = {arm: [] for arm in PATCHES}
    for seed in (int(s) for s in args.ablation_seeds.split(",")):
        for arm, (name, overrides) in PATCHES.items():
            patches[arm].append(train_and_score(out, f"{name}-s{seed}", [*base, "data.size=32", *overrides,
                                                                          f"seed={seed}"], features, 180))

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [f"Objective (16x16, 16x16 PatchGAN), seeds {args.seeds}:", "", *table(objectives, "objective"), "",
             f"FID(L1 + cGAN) < FID(L1 alone) in {sum(wins)} of {len(wins)} seeds.", "",
             f"Receptive field of D (32x32, L1 + cGAN), seeds {args.ablation_seeds}:", "",
             *table(patches, "discriminator"), "",
             f"edges2digits test split (180 pairs), {args.steps} steps of 64, G and D with 16 base channels; features: "
             f"the digits classifier at 16x16; mean ± s.e.; {(cpu.ru_utime + cpu.ru_stime) / 60:.1f} CPU-minutes in "
             "this invocation."]
    text = "\n".join(lines)
    (out / "pix2pix_table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
