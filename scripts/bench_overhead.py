"""Overhead of gen-runner against a plain PyTorch loop: DCGAN on 28x28 images, batch 64.

Both sides train the same nets (gen_runner.nets.dcgan), with the same optimizers (Adam 2e-4,
betas (0.5, 0.999)), objective and batches (one fixed set of random 28x28 uint8 images, mapped to
[-1, 1]); gen-runner goes through its real train task (Hydra config, Lightning Trainer, logger,
checkpoint, divergence guard, progress bar). Steps per second are timed after a warm-up, the two
sides alternating, and the script prints the ratio (target >= 0.95). It also times
`gen-runner --help` and a whole one-step `gen-runner train` (start-up to exit) in subprocesses.

    python scripts/bench_overhead.py [--steps 150] [--repeats 2] [--accelerator gpu --precision bf16-mixed]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import compose_config  # noqa: E402  (composes configs exactly as the CLI does)

from gen_runner.data.images import to_gan_range  # noqa: E402
from gen_runner.gans.objectives import StandardGAN  # noqa: E402
from gen_runner.nets.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from gen_runner.tasks.train import train  # noqa: E402

N_IMAGES, BATCH, LATENT = 6400, 64, 100


class StepTimer(L.Callback):
    """Steps per second after `warmup` (synchronised on GPU), left in StepTimer.result."""

    result: float = 0.0

    def __init__(self, warmup: int):
        self.warmup, self.start = warmup, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            _sync()
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        _sync()
        StepTimer.result = (trainer.global_step - self.warmup) / (time.perf_counter() - self.start)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_loop(images: torch.Tensor, steps: int, warmup: int, device: str, precision: str) -> float:
    """The loop a researcher would write by hand; returns steps per second."""
    torch.manual_seed(0)
    shape = tuple(images.shape[1:])
    g, d = DCGANGenerator(LATENT, shape).to(device), DCGANDiscriminator(shape).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    objective = StandardGAN()
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    generator = torch.Generator().manual_seed(0)
    step, start = 0, None
    while step < steps:
        for idx in torch.randperm(len(images), generator=generator).split(BATCH):
            if len(idx) < BATCH:
                continue
            if step == warmup:
                _sync()
                start = time.perf_counter()
            x = to_gan_range(images[idx].to(device).float(), 256)
            with autocast:
                fake = g(torch.empty(BATCH, LATENT, device=device).uniform_(-1, 1))
                d_loss = objective.d_loss(d(x), d(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            d.requires_grad_(False)
            with autocast:
                g_loss = objective.g_loss(d(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            d.requires_grad_(True)
            step += 1
            if step == steps:
                break
    _sync()
    return (steps - warmup) / (time.perf_counter() - start)


def gen_runner_loop(data_file: Path, steps: int, warmup: int, accelerator: str, precision: str, out: Path) -> float:
    cfg = compose_config("train", [
        "model=dcgan", "data=tensor_file", f"data.path={data_file}", f"data.batch_size={BATCH}",
        "data.val_fraction=0", "data.test_fraction=0", f"trainer.max_steps={steps}",
        f"trainer.accelerator={accelerator}", f"trainer.precision={precision}", "trainer.enable_model_summary=false",
        "callbacks.samples=null",  # images every 500 steps would not fall inside the timed window anyway
    ], out)
    with open_dict(cfg):
        cfg.callbacks["timer"] = {"_target_": f"{StepTimer.__module__}.StepTimer", "warmup": warmup}
    train(cfg)
    return StepTimer.result


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args()
    device = "cuda" if args.accelerator == "gpu" else "cpu"

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_IMAGES, 1, 28, 28), dtype=np.uint8)
    np.save(tmp / "images.npy", images)
    plain, ours = [], []
    for r in range(args.repeats):
        plain.append(plain_loop(torch.from_numpy(images), args.steps, args.warmup, device, args.precision))
        ours.append(gen_runner_loop(tmp / "images.npy", args.steps, args.warmup, args.accelerator, args.precision,
                                    tmp / f"run{r}"))
        print(f"repeat {r}: plain {plain[-1]:.2f} it/s, gen-runner {ours[-1]:.2f} it/s", flush=True)
    p, o = statistics.median(plain), statistics.median(ours)
    exe = [sys.executable, "-m", "gen_runner"]
    help_s = statistics.median(timed([*exe, "--help"]) for _ in range(3))
    first_step_s = timed([*exe, "train", "model=dcgan", "data=tensor_file", f"data.path={tmp / 'images.npy'}",
                          "trainer.max_steps=1", f"trainer.accelerator={args.accelerator}",
                          f"paths.root={tmp / 'cli'}"])
    print(f"\nDCGAN 28x28, batch {BATCH}, {args.accelerator} {args.precision}, torch threads {torch.get_num_threads()}")
    print(f"plain PyTorch loop : {p:8.2f} steps/s")
    print(f"gen-runner         : {o:8.2f} steps/s")
    print(f"ratio              : {o / p:8.3f}  (target >= 0.95)")
    print(f"gen-runner --help  : {help_s:8.2f} s")
    print(f"train, 1 step, start to exit: {first_step_s:.2f} s")


if __name__ == "__main__":
    main()
