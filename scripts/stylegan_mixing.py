"""Style mixing separates coarse from fine (Karras, Laine & Aila 2019, sec. 3.1 and fig. 3): which
source's class does a mix of A's coarse styles (4x4-8x8) with B's finer ones take?

    python scripts/stylegan_mixing.py [--seeds 0,1,2] [--jobs 3] [--steps N] [--rows 20] [--columns 20]
        [--out DIR] [--classifier CKPT] [--checkpoints CKPT ...]

For each seed: `gen-runner train experiment=stylegan_digits seed=<s>` (16x16 digits), then
`gen-runner sample mode=mixing mode.styles=coarse` (a grid of rows x columns mixes: each cell is its
row source B with its column source A's coarse styles); the digits classifier
(`experiment=classifier_digits data.size=16`, trained once, or --classifier) labels A, B and every
mix. Counted over the cells whose A and B the classifier puts in different classes: the share of
mixes in A's class (the coarse source; target >= 80%) and in B's (target <= 20%), as mean ± s.e.
over seeds. `mode.styles=middle` (A's 16x16 styles into B) is measured the same way, the reverse
check. The table lands in <out>/stylegan_mixing.md. `--checkpoints` skips training; `--jobs N` trains
N seeds at once (one torch thread each).
"""
from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from gen_runner.metrics.features import ClassifierFeatures

from measure import gen_runner, mean_se


def run_below(out: Path, *args: str) -> Path:
    """`gen-runner <args>` with its runs below `out`; the run directory it reports."""
    return gen_runner(*args, f"paths.root={out}")


def shares(grid: np.ndarray, rows: int, columns: int, classify) -> tuple[float, float, int]:
    """(share of mixes in the column source's class, in the row source's, cells counted) over the cells
    whose sources the classifier puts in different classes."""
    labels = classify(torch.from_numpy(grid)).reshape(rows + 1, columns + 1)
    column_source, row_source, mixes = labels[0, 1:][None, :], labels[1:, 0][:, None], labels[1:, 1:]
    differ = np.broadcast_to(column_source != row_source, mixes.shape)
    n = int(differ.sum())
    return float((mixes == column_source)[differ].mean()), float((mixes == row_source)[differ].mean()), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once")
    parser.add_argument("--steps", type=int, default=None, help="trainer.max_steps (default: the preset's)")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--classifier", type=Path, default=None)
    parser.add_argument("--checkpoints", type=Path, nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=Path("outputs") / "stylegan_mixing" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    classifier = args.classifier or run_below(args.out, "train", "experiment=classifier_digits", "data.size=16",
                                               "callbacks=minimal") / "checkpoints/last.ckpt"
    features = ClassifierFeatures(str(classifier), torch.device("cpu"))

    def classify(images: torch.Tensor) -> np.ndarray:
        return features(images)[1].argmax(1).numpy()

    seeds = [int(s) for s in args.seeds.split(",")]
    def train(seed: int) -> Path:
        return run_below(args.out, "train", "experiment=stylegan_digits", f"seed={seed}", "callbacks=minimal",
                          *([f"trainer.max_steps={args.steps}"] if args.steps else [])) / "checkpoints/last.ckpt"

    with ThreadPoolExecutor(args.jobs) as pool:
        checkpoints = args.checkpoints or list(pool.map(train, seeds))
    results: dict[str, list[tuple[float, float, int]]] = {"coarse": [], "middle": []}
    for i, ckpt in enumerate(checkpoints):
        for styles in results:
            run = run_below(args.out, "sample", f"ckpt_path={ckpt}", "mode=mixing", f"mode.styles={styles}",
                             f"mode.rows={args.rows}", f"mode.columns={args.columns}", f"seed={100 + i}")
            results[styles].append(shares(np.load(run / "samples/samples.npy"), args.rows, args.columns, classify))

    lines = [f"Style mixing on 16x16 digits (experiment=stylegan_digits, {len(checkpoints)} run(s), a {args.rows} x "
             f"{args.columns} grid each; classifier {classifier}); mean ± s.e. over runs; "
             f"{(time.time() - started) / 60:.1f} min wall-clock", "",
             "| styles from A (the column source) | mix in A's class | mix in B's class | cells with A, B of different classes |",
             "|---|---|---|---|"]
    for styles, rows in results.items():
        what = "coarse (4x4-8x8), B the rest" if styles == "coarse" else "16x16 (middle), B the coarse"
        lines.append(f"| {what} | {mean_se([r[0] for r in rows], 1, percent=True)} | {mean_se([r[1] for r in rows], 1, percent=True)} | "
                     f"{sum(r[2] for r in rows)} |")
    coarse = statistics.mean(r[0] for r in results["coarse"]), statistics.mean(r[1] for r in results["coarse"])
    lines += ["", f"Target (coarse from A): A's class >= 80% and B's <= 20%: "
                  f"{'met' if coarse[0] >= 0.8 and coarse[1] <= 0.2 else 'not met'} "
                  f"({100 * coarse[0]:.1f}% / {100 * coarse[1]:.1f}%)"]
    table = "\n".join(lines)
    (args.out / "stylegan_mixing.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
