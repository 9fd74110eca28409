"""Cost of the image metrics on CPU: FID + KID + IS on 10,000 generated 28x28 images in the
feature space of a gen-runner classifier, the share of it spent computing features, and the
speed-up the real-feature cache gives a second evaluation.

The classifier and the DCGAN are trained for a few steps only (their weights do not change the
cost); the real images are the MNIST test set from ../shared/data/mnist when present, else random
28x28 images. Everything runs in this process, through the same functions `gen-runner eval` uses.

    python scripts/bench_eval.py [--num 10000] [--batch-size 500]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import compose_config  # noqa: E402  (composes configs exactly as the CLI does)

from gen_runner.data.images import load_mnist  # noqa: E402
from gen_runner.metrics.features import ClassifierFeatures, extract, real_features  # noqa: E402
from gen_runner.metrics.suite import fidelity_metrics  # noqa: E402
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint  # noqa: E402
from gen_runner.tasks.train import train  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def real_images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        x, y = load_mnist(MNIST, "test")
        return x[:n].numpy(), y[:n].numpy(), "MNIST test set"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n), "random images"


def quick_checkpoint(tmp: Path, name: str, *overrides: str) -> str:
    cfg = compose_config("train", [*overrides, "trainer.max_steps=5", "callbacks=minimal", "logger=csv",
                                   "trainer.enable_model_summary=false", "+trainer.enable_progress_bar=false"],
                         tmp / name)
    train(cfg)
    return str(tmp / name / "checkpoints" / "last.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    x, y, source = real_images(args.num)
    np.savez(tmp / "real.npz", x=x, y=y)
    data = ["data=tensor_file", f"data.path={tmp / 'real.npz'}"]
    for name in ("classifier", "dcgan"):
        (tmp / name).mkdir()
    classifier = quick_checkpoint(tmp, "classifier", "model=classifier", *data)
    generator = model_from_checkpoint(load_checkpoint(quick_checkpoint(tmp, "dcgan", "model=dcgan", *data)))
    extractor = ClassifierFeatures(classifier, torch.device("cpu"))
    real = torch.from_numpy(x)
    key = {"data": "bench", "split": "test", "num_real": len(real), "image_size": extractor.image_size}

    t0 = time.perf_counter()
    samples = generator.sample(args.num, generator=torch.Generator().manual_seed(0), batch_size=args.batch_size)
    t_generate = time.perf_counter() - t0
    t0 = time.perf_counter()
    fake = extract(extractor, samples.split(args.batch_size), args.num, "generated")
    t_fake_features = time.perf_counter() - t0
    t0 = time.perf_counter()
    *real_fl, hit = real_features(extractor, real, 256, key, tmp / "cache", args.batch_size)
    t_real_cold = time.perf_counter() - t0
    assert not hit
    t0 = time.perf_counter()
    *real_fl, hit = real_features(extractor, real, 256, key, tmp / "cache", args.batch_size)
    t_real_warm = time.perf_counter() - t0
    assert hit
    t0 = time.perf_counter()
    fidelity_metrics(tuple(real_fl), fake, ["fid", "kid", "is"])
    t_metrics = time.perf_counter() - t0

    cold = t_fake_features + t_real_cold + t_metrics
    warm = t_fake_features + t_real_warm + t_metrics
    print(f"\n{args.num} generated vs {len(real)} real ({source}) 28x28 images, classifier features "
          f"({extractor.model.net.num_features}-d), CPU, torch threads {torch.get_num_threads()}")
    print(f"generating the samples (DCGAN)      : {t_generate:7.2f} s  (not part of the metric cost below)")
    print(f"features of the generated images    : {t_fake_features:7.2f} s")
    print(f"features of the real images, cold   : {t_real_cold:7.2f} s")
    print(f"features of the real images, cached : {t_real_warm:7.2f} s")
    print(f"FID + KID (100 x 1000) + IS (10)    : {t_metrics:7.2f} s")
    print(f"FID+KID+IS, first evaluation        : {cold:7.2f} s, {100 * (t_fake_features + t_real_cold) / cold:.0f}% "
          "of it on features")
    print(f"FID+KID+IS, real features cached    : {warm:7.2f} s, speed-up x{cold / warm:.2f}")


if __name__ == "__main__":
    main()
