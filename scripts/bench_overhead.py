"""Whole-run overhead of gen-runner against a plain PyTorch loop: DCGAN on the real MNIST test set.

The two sides:
- gen-runner: `python -m gen_runner train model=dcgan data=mnist data.root=<mnist> data.split=test
  trainer.max_steps=N`, through the real CLI, Hydra config, train task and Lightning Trainer, with the
  default callbacks as a user gets them (sample grids to TensorBoard and PNG, checkpoints, the
  divergence guard, the progress bar, TensorBoard logging every 50 steps, metrics.json at the end),
  plus one callback that times it and drives the plain loop (below).
- plain: the loop a researcher would write: the same IDX files, the same 90% training split and
  per-epoch batch order (batch 64, last partial batch dropped), the same nets
  (gen_runner.nets.dcgan), Adam(2e-4, betas 0.5/0.999) for each, the same non-saturating loss and
  seeds, then one checkpoint (both nets and optimizers) and one 8x8 sample grid PNG at the end. No
  config system, logging, progress bar or periodic grids.
Both draw the same initial weights, batches and noise (each keeps its own global RNG state), so both
end at the same losses; the script prints them, so a reader can check that they did the same work.

How it is timed, so that a machine shared with other work hits both sides alike:
- The loop, interleaved in one process: inside the gen-runner run, after every gen-runner step
  (`--chunk` steps), the plain loop takes its next step; each side's loop time is the sum of its
  own slices (first batch to the end of training, final checkpoint and grid included).
- Start-up and teardown, in fresh processes: gen-runner's from spawn to its first batch (imports,
  config, data, nets, Trainer setup) and from the end of training to exit (metrics.json, TensorBoard
  hparams, interpreter exit), the plain side's from a process that imports, loads the data, builds
  nets and optimizers, and exits. The two kinds of process alternate.
- Each figure is a median over `--repeats`; the spread of the per-repeat ratios is printed with it.

Reported: the loop's ratio plain/gen-runner (1.0 = parity; target >= 0.97), the whole run's at N
steps (start-up + loop + teardown) and projected to 2,000 steps (start-up and teardown kept, the loop
scaled by 2000/N). The run is the user's: grids every 500 steps and checkpoints every 1,000, so a
short run (N < 500) has only the final grid and checkpoint, as the plain loop does, and its loop ratio
is the per-step overhead; the 2,000-step run's three extra grids and one extra checkpoint then go
uncounted (about 0.1 s each on a CPU). --dense-intervals puts the 2,000-step run's count of them
into N steps (grids every N/4, checkpoints every N/2): 2000/N times their weight, a lower bound on
the loop ratio (the projection then counts them 2000/N times too). No test asserts these times.
On a GPU each slice ends with a synchronize, which costs both sides their queue-ahead: raise
--chunk there.

    python scripts/bench_overhead.py [--steps 300] [--repeats 3] [--threads 2] [--dense-intervals]
                                     [--accelerator gpu --precision bf16-mixed --chunk 10]
    python scripts/bench_overhead.py --steps 2000 --repeats 1     # the issue's whole run
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
BATCH, LATENT, SEED = 64, 100, 0
VAL_FRACTION = TEST_FRACTION = 0.05  # configs/data/mnist.yaml


def _now(device: str = "cpu") -> float:
    """Wall-clock time after the device's queued work is done."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.time()


# ----------------------------------------------------------------------------- the plain loop


def plain_setup(args: argparse.Namespace) -> dict:
    """Data, nets and optimizers, as a researcher's script starts."""
    import torch

    from gen_runner.data.images import load_mnist
    from gen_runner.gans.objectives import StandardGAN
    from gen_runner.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    device = "cuda" if args.accelerator == "gpu" else "cpu"
    x, _ = load_mnist(Path(args.data), "test")
    n = len(x)  # the datamodule's split: a seeded permutation, val and test first
    held_out = round(n * VAL_FRACTION) + round(n * TEST_FRACTION)
    images = x[torch.randperm(n, generator=torch.Generator().manual_seed(SEED))[held_out:]]
    torch.manual_seed(SEED)
    shape = tuple(images.shape[1:])
    g, d = DCGANGenerator(LATENT, shape).to(device), DCGANDiscriminator(shape).to(device)
    return {"device": device, "images": images, "g": g, "d": d, "objective": StandardGAN(),
            "opt_g": torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            "opt_d": torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))}


def plain_loop(args: argparse.Namespace, s: dict, out: Path):
    """The training loop, one step per `next()`; the last `next()` saves and returns the final losses."""
    import torch

    from gen_runner.data.images import from_gan_range, save_image_grid, to_gan_range

    device, images, g, d, opt_g, opt_d = (s[k] for k in ("device", "images", "g", "d", "opt_g", "opt_d"))
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    step, epoch = 0, 0
    while step < args.steps:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SEED * 100_003 + epoch))
        for idx in order[: len(order) // BATCH * BATCH].split(BATCH):
            real = to_gan_range(images[idx].to(device).float(), 256)
            with autocast:
                fake = g(torch.empty(BATCH, LATENT, device=device).uniform_(-1, 1))
                d_loss = s["objective"].d_loss(d(real), d(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            d.requires_grad_(False)
            with autocast:
                g_loss = s["objective"].g_loss(d(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            d.requires_grad_(True)
            step += 1
            if step == args.steps:
                break
            yield
        epoch += 1
    torch.save({"step": step, "generator": g.state_dict(), "discriminator": d.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}, out / "plain_last.pt")
    g.eval()
    with torch.no_grad():
        noise = (torch.rand(64, LATENT, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
        save_image_grid((from_gan_range(g(noise).float(), 256) / 255).clamp(0, 1).cpu(), out / "plain_samples.png")
    yield {"train/d_loss": d_loss.item(), "train/g_loss": g_loss.item()}


# ----------------------------------------------------------------------------- child processes


def plain_startup_child(args: argparse.Namespace, out: Path) -> dict:
    plain_setup(args)
    return {"ready": _now()}


def gen_runner_child(args: argparse.Namespace, out: Path) -> dict:
    """`gen-runner train ...` in this process as the console script runs it, the plain loop interleaved."""
    import lightning as L  # gen-runner imports it anyway; the callback below needs it
    import torch

    r: dict = {"plain_loop": 0.0}
    cuda = args.accelerator == "gpu"

    def rng_state():
        return torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None

    def set_rng_state(state):
        torch.set_rng_state(state[0])
        if cuda:
            torch.cuda.set_rng_state(state[1])

    class Interleave(L.Callback):
        def on_train_start(self, trainer, pl_module):
            start = _now()
            ours_rng = rng_state()
            self.plain = plain_setup(args)
            self.plain_rng = rng_state()
            set_rng_state(ours_rng)
            self.steps, self.done = plain_loop(args, self.plain, out), 0
            self.device = self.plain["device"]
            r["plain_setup"] = _now() - start  # done during gen-runner's start-up: not gen-runner's
            r["loop_start"] = _now(self.device)

        def _plain(self, n: int):
            ours_rng = rng_state()
            set_rng_state(self.plain_rng)
            start = _now(self.device)
            for _ in range(n):
                result = next(self.steps)
            r["plain_loop"] += _now(self.device) - start
            self.plain_rng = rng_state()
            set_rng_state(ours_rng)
            self.done += n
            return result

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if step % args.chunk == 0 and step < args.steps:
                self._plain(args.chunk)

        def on_fit_end(self, trainer, pl_module):
            r["plain_losses"] = self._plain(args.steps - self.done)  # the last step, checkpoint and grid
            r["loop_end"] = _now(self.device)

    globals()["Interleave"] = Interleave  # Hydra finds it as __main__.Interleave
    overrides = ["model=dcgan", "data=mnist", f"data.root={args.data}", "data.split=test",
                 f"trainer.max_steps={args.steps}", f"trainer.accelerator={args.accelerator}",
                 f"trainer.precision={args.precision}", f"hydra.run.dir={out / 'run'}",
                 "+callbacks.bench_interleave._target_=__main__.Interleave"]
    if args.dense_intervals:
        overrides += [f"callbacks.samples.every_n_steps={max(1, args.steps // 4)}",
                      f"callbacks.checkpoint.every_n_train_steps={max(1, args.steps // 2)}"]
    from gen_runner.cli import main

    main(["train", *overrides])
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    r["losses"] = {k: metrics[k] for k in ("train/d_loss", "train/g_loss")}
    return r


# ----------------------------------------------------------------------------- the parent


def spawn(kind: str, args: argparse.Namespace, out: Path) -> dict:
    out.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--steps", str(args.steps),
           "--chunk", str(args.chunk), "--accelerator", args.accelerator, "--precision", args.precision,
           "--data", str(args.data), "--out", str(out)] + (["--dense-intervals"] if args.dense_intervals else [])
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    load = os.getloadavg()[0]
    start = time.time()
    with open(out / "log.txt", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out)
    end = time.time()
    r = json.loads((out / "result.json").read_text())
    if kind == "plain-startup":
        return {"startup": r["ready"] - start, "teardown": end - r["ready"], "load": load}
    loop = r["loop_end"] - r["loop_start"]
    return {"startup": r["loop_start"] - start - r["plain_setup"], "teardown": end - r["loop_end"],
            "loop": loop - r["plain_loop"], "plain_loop": r["plain_loop"], "load": load,
            "losses": r["losses"], "plain_losses": r["plain_losses"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=1, help="steps each side takes before the other's turn")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for both sides (0: torch's default)")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--dense-intervals", action="store_true",
                        help="sample grids every N/4 steps and checkpoints every N/2 (a 2,000-step run's count) "
                             "instead of the configured 500/1000")
    parser.add_argument("--data", type=Path, default=MNIST, help="folder with the MNIST IDX .gz files")
    parser.add_argument("--child", choices=["plain-startup", "gen-runner"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (plain_startup_child if args.child == "plain-startup" else gen_runner_child)(args, args.out)
        (args.out / "result.json").write_text(json.dumps(result))
        return

    if not (args.data / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"MNIST test set not found in {args.data}: pass --data <folder with t10k-*-ubyte.gz>")
    tmp = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    plain, ours = [], []
    for r in range(args.repeats):
        for kind in (("plain-startup", "gen-runner") if r % 2 == 0 else ("gen-runner", "plain-startup")):
            (plain if kind == "plain-startup" else ours).append(spawn(kind, args, tmp / f"{kind}{r}"))
        p, o = plain[-1], ours[-1]
        p["loop"] = o["plain_loop"]
        p["whole"], o["whole"] = (x["startup"] + x["loop"] + x["teardown"] for x in (p, o))
        print(f"repeat {r}: loop plain {p['loop']:6.1f} s, gen-runner {o['loop']:6.1f} s (ratio "
              f"{p['loop'] / o['loop']:.3f}); start-up {p['startup']:.1f} vs {o['startup']:.1f} s, teardown "
              f"{p['teardown']:.1f} vs {o['teardown']:.1f} s; load avg {p['load']:.1f}/{o['load']:.1f}", flush=True)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    def ratio(each: list[float]) -> str:  # per repeat, as the load on a shared machine changes between them
        return f"{statistics.median(each):.3f}  (per repeat {min(each):.3f}..{max(each):.3f})"

    def projected(p: dict, o: dict, steps: int = 2000) -> float:  # start-up and teardown do not grow with N
        return ((p["startup"] + p["teardown"] + steps * p["loop"] / args.steps)
                / (o["startup"] + o["teardown"] + steps * o["loop"] / args.steps))

    intervals = f"{max(1, args.steps // 4)}/{max(1, args.steps // 2)} (dense)" if args.dense_intervals else "500/1000"
    print(f"\nDCGAN on MNIST test split (9,000 training images), batch {BATCH}, {args.steps} steps, "
          f"{args.accelerator} {args.precision}, threads {args.threads or 'default'} ({os.cpu_count()} CPUs), "
          f"{args.repeats} repeats, interleaved every {args.chunk} step(s), grid/checkpoint every {intervals} steps")
    print(f"{'median':<16}{'plain':>10}{'gen-runner':>12}")
    for key in ("startup", "loop", "teardown", "whole"):
        print(f"{key + ' (s)':<16}{med(plain, key):>10.2f}{med(ours, key):>12.2f}")
    print("\nmedian of the per-repeat ratios plain/gen-runner (1.0 = parity)")
    print(f"loop                          : {ratio([p['loop'] / o['loop'] for p, o in zip(plain, ours)])}; "
          "target >= 0.97")
    print(f"whole run at {args.steps:>5} steps        : {ratio([p['whole'] / o['whole'] for p, o in zip(plain, ours)])}")
    print(f"whole run projected to 2000   : {ratio([projected(p, o) for p, o in zip(plain, ours)])}  "
          f"(this run's time per step; start-up + teardown: plain "
          f"{med(plain, 'startup') + med(plain, 'teardown'):.1f} s, gen-runner {med(ours, 'startup') + med(ours, 'teardown'):.1f} s)")
    print("final losses (the same work gives the same numbers): plain "
          + ", ".join(f"{k} {v:.4f}" for k, v in ours[-1]["plain_losses"].items()) + "; gen-runner "
          + ", ".join(f"{k} {v:.4f}" for k, v in ours[-1]["losses"].items()))
    print(f"runs in {tmp}")


if __name__ == "__main__":
    main()
