"""Streaming throughput of data=image_folder: images/s decoded (PNG, 64x64 RGB, resized and cropped to
data.size, flipped) for 0 and 2 loader workers, against the same set held in memory.

    nice -n 10 .venv/bin/python scripts/bench_streaming.py [--images 2048] [--size 64] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gen_runner.data.datamodule import ImageFolderDataModule


def write_folder(root: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / f"{i:05d}.png")


def images_per_second(root: Path, size: int, workers: int, stream: bool) -> float:
    dm = ImageFolderDataModule(str(root), size=size, flip=True, stream=stream, num_workers=workers, batch_size=64,
                               val_fraction=0.0, test_fraction=0.0)
    dm.setup()
    loader = dm.train_dataloader()
    start, n = time.perf_counter(), 0
    for x, in loader:
        n += len(x)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, args.images, 64)
        rows = [("in memory (flips only)", 0, False), ("streamed, 0 workers", 0, True), ("streamed, 2 workers", 2, True)]
        print(f"{args.images} PNGs 64x64 -> data.size={args.size}, batch 64, flip on; one epoch, {args.repeats} repeats")
        print("| loader | images/s (mean ± s.e.) |\n|---|---|")
        for name, workers, stream in rows:
            rates = [images_per_second(root, args.size, workers, stream) for _ in range(args.repeats)]
            se = statistics.stdev(rates) / len(rates) ** 0.5 if len(rates) > 1 else 0.0
            print(f"| {name} | {statistics.mean(rates):,.0f} ± {se:,.0f} |")


if __name__ == "__main__":
    main()
