"""The flow-posterior VAE table at laptop scale: binarised MNIST (the 10k test-set files, dynamically
binarised: 9,000 training and 1,000 test images), the same encoder, decoder (model=vae's MLPs, 2 x 256
ELU units, 32 latents) and step budget for every posterior: diagonal, planar with K = 1, 4, 16, and
radial, the three Sylvester flows and IAF with K = 4; -ELBO and the importance-weighted NLL bound on
the 1,000 test images (nats), mean ± standard error over seeds, beside the papers' full-scale
figures. Runs the project's CLI: one `train --multirun` per K grid, then one `eval --multirun`.

    python scripts/vae_table.py [--seeds 0,1,2] [--steps 1000] [--iw-samples 100] [--root ../shared/data/mnist]
        [--posteriors diagonal,planar,...] [--out DIR] [--tabulate]

Each seed also draws its own data split, so most of the seed-to-seed spread is shared by every
posterior: the table adds each posterior's difference to the diagonal one of the same seed (paired).
The table lands in <out>/vae_table.md; the runs under <out>/train* and <out>/eval (`--tabulate`:
train nothing, tabulate <out> again).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from omegaconf import OmegaConf

from measure import gen_runner, mean_se

POSTERIORS = ["diagonal", "planar", "radial", "sylvester_orthogonal", "sylvester_householder",
              "sylvester_triangular", "iaf"]
PLANAR_LENGTHS = [1, 16]  # planar's K beside the common K = 4
# Full-scale test NLL (nats, IW bound) on binarised MNIST.
PAPERS = {
    ("diagonal", None): "R&M 2015: 89.9",
    ("planar", 16): "R&M 2015: 87.5 (K = 10), 85.1 (K = 80); vdB 2018: 86.06 (K = 16)",
    ("sylvester_orthogonal", 4): "vdB 2018: 83.32 (K = 16, M = 32)",
    ("sylvester_householder", 4): "vdB 2018: 83.40 (K = 16, H = 8)",
    ("iaf", 4): "vdB 2018: 84.20 (K = 16)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--iw-samples", type=int, default=100)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    parser.add_argument("--posteriors", default=",".join(POSTERIORS))
    parser.add_argument("--out", type=Path, default=Path("outputs") / "vae_table" / time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("--tabulate", action="store_true", help="train nothing: tabulate --out again")
    args = parser.parse_args()
    trained = None if args.tabulate else train_and_evaluate(args)
    text = table(args, trained)
    (args.out / "vae_table.md").write_text(text)
    print(text)


def train_and_evaluate(args) -> float:
    """Train the grids, evaluate every checkpoint; the training time in seconds."""
    common = ["model=vae", "data=binarized_mnist", f"data.root={args.root}", "data.split=test",
              "data.val_fraction=0", "data.test_fraction=0.1", "data.batch_size=100", "trainer.limit_val_batches=0",
              f"trainer.max_steps={args.steps}", f"model.warmup_steps={args.steps // 2}", "callbacks=minimal",
              f"seed={args.seeds}"]
    start = time.perf_counter()
    grids = [(args.out / "train", [f"model.posterior={args.posteriors}", "model.flow_length=4"])]
    if "planar" in args.posteriors.split(","):
        grids.append((args.out / "train_planar", ["model.posterior=planar",
                                                  f"model.flow_length={','.join(map(str, PLANAR_LENGTHS))}"]))
    for sweep, grid in grids:
        gen_runner("train", "--multirun", *common, *grid, f"hydra.sweep.dir={sweep}", quiet=False)
    trained = time.perf_counter() - start
    checkpoints = sorted(str(p) for sweep, _ in grids for p in sweep.glob("*/checkpoints/last.ckpt"))
    gen_runner("eval", "--multirun", f"ckpt_path={','.join(checkpoints)}", f"eval.iw_samples={args.iw_samples}",
               f"hydra.sweep.dir={args.out / 'eval'}")
    return trained


def table(args, trained: float | None) -> str:
    """{(posterior, K): {train seed: (neg_elbo, nll_iw)}} from <out>/eval, as a markdown table."""
    results: dict[tuple[str, int | None], dict[int, tuple[float, float]]] = {}
    for path in sorted((args.out / "eval").glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        protocol = metrics["protocol"]
        run = Path(protocol["checkpoint"]).parents[1]
        seed = OmegaConf.load(run / ".hydra" / "config.yaml").seed
        results.setdefault((protocol["posterior"], protocol["flow_length"]), {})[seed] = (metrics["neg_elbo"],
                                                                                           metrics["nll_iw"])
    base = results.get(("diagonal", None), {})
    order = {p: i for i, p in enumerate(POSTERIORS)}
    lines = ["| posterior | K | -ELBO | NLL (IW) | -ELBO - diagonal's | NLL - diagonal's | papers (full scale, NLL) |",
             "|---|---|---|---|---|---|---|"]
    for (posterior, k), runs in sorted(results.items(), key=lambda item: (order[item[0][0]], item[0][1] or 0)):
        paired = [s for s in runs if s in base]
        cells = [mean_se([v[i] for v in runs.values()], 2) for i in (0, 1)]
        cells += [mean_se([runs[s][i] - base[s][i] for s in paired], 2) if paired else "-" for i in (0, 1)]
        lines.append(f"| {posterior} | {k or '-'} | {' | '.join(cells)} | {PAPERS.get((posterior, k), '')} |")
    seeds = sorted({len(v) for v in results.values()})
    return ("# VAE posteriors on binarised MNIST, laptop scale\n\n" + "\n".join(lines) +
            f"\n\nMean ± standard error over {'/'.join(map(str, seeds))} seed(s) (each seed its own data split; the "
            f"differences paired by seed); {args.steps} steps of 100 images (KL warm-up over {args.steps // 2}), IW "
            f"bound with {args.iw_samples} samples, 1,000 test images (nats)."
            + ("" if trained is None else f" Training took {trained / 60:.1f} min.") + "\n")


if __name__ == "__main__":
    main()
