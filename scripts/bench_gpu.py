"""GPU throughput of gen-runner against a plain PyTorch loop of the same nets (issue 16, item 6).

Images per second of training, steady state (after `--warmup` steps, which also absorb
torch.compile's compilation), for DCGAN 64x64, WGAN-GP 64x64 and Glow at 32x32 (CIFAR-10 size),
each at four settings: fp32, bf16-mixed, channels_last (fp32, the nets and batches in
channels-last memory format) and compile (`model.compile=true`: torch.compile of the nets).

The two sides, in the same process and on the same GPU, one after the other per setting:
- gen-runner: the train task (gen_runner.tasks.train.train) on a config composed as the CLI does
  (`model=dcgan|wgan_gp|glow data=tensor_file`, random uint8 images of the size, batch `--batch`,
  callbacks=minimal, CSV logging every 50 steps), with one callback that times the steps.
- plain: the loop a researcher would write around the same nets (taken from a model built from the
  same config): Adam with the model's settings; DCGAN's non-saturating BCE losses, one D and one G
  step per batch; WGAN-GP's critic loss + 10 x gradient penalty, 5 critic steps per G step (images
  each on its own batch); Glow's -log p of uniformly dequantized pixels. bf16 is
  torch.autocast(bfloat16), as Lightning's bf16-mixed does.
Images/s counts the real images consumed (batches x batch size) on both sides. Reported: images/s of each side and their ratio gen-runner/plain (target >= 0.95 at every setting).
It needs a CUDA GPU and runs in a few minutes on one (4 x 3 x 2 short runs). It has not been run:
the machines this was written on have no GPU, so no figure of it exists yet.

    python scripts/bench_gpu.py [--steps 200] [--warmup 30] [--batch 64]
    python scripts/bench_gpu.py --device cpu --steps 3 --warmup 1 --batch 4 --models dcgan   # a smoke test
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"dcgan": 64, "wgan_gp": 64, "glow": 32}
SETTINGS = ("fp32", "bf16-mixed", "channels_last", "compile")


class StepTimer(L.Callback):
    """Times the training batches after the first `warmup` (synchronizing the GPU at both ends)."""

    result: dict = {}

    def __init__(self, warmup: int):
        self.warmup, self.batches = warmup, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1
        if self.batches == self.warmup:
            _sync()
            StepTimer.result = {"start": time.perf_counter(), "at": self.batches}

    def on_train_end(self, trainer, pl_module):
        _sync()
        StepTimer.result.update(end=time.perf_counter(), batches=self.batches - StepTimer.result["at"])


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def compose(model: str, setting: str, args, data: Path, out: Path):
    from gen_runner.cli import register_resolvers
    from gen_runner.configs import job_config
    from gen_runner.schema import register

    register()
    register_resolvers()
    overrides = [f"model={model}", "data=tensor_file", f"data.path={data}", f"data.batch_size={args.batch}",
                 "callbacks=minimal", "logger=csv", "trainer.log_every_n_steps=50", "trainer.enable_model_summary=false",
                 f"trainer.max_steps={args.warmup + args.steps}", "trainer.val_check_interval=100000",
                 f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
                 f"trainer.precision={'bf16-mixed' if setting == 'bf16-mixed' else '32-true'}",
                 f"model.compile={'true' if setting == 'compile' else 'false'}",
                 f"+callbacks.timer={{_target_:__main__.StepTimer,warmup:{args.warmup}}}"]
    return job_config("train", overrides, out)


def gen_runner_side(cfg, setting: str) -> float:
    from gen_runner.tasks.train import train

    if setting == "channels_last":  # the nets in channels-last format from their first step
        import gen_runner.base as base

        base_setup = base.GenerativeModule.setup
        base.GenerativeModule.setup = lambda self, stage: (self.to(memory_format=torch.channels_last),
                                                           base_setup(self, stage))[1]
        try:
            train(cfg)
        finally:
            base.GenerativeModule.setup = base_setup
    else:
        train(cfg)
    r = StepTimer.result
    return r["batches"] * cfg.data.batch_size / (r["end"] - r["start"])


def plain_side(cfg, model_name: str, setting: str, images: torch.Tensor, args) -> float:
    from gen_runner.instantiate import build_datamodule, build_model

    device = torch.device(args.device)
    dm = build_datamodule(cfg.data, cfg.seed)
    module = build_model(cfg.model, dm.describe(), cfg.optimizer).to(device)
    fmt = torch.channels_last if setting == "channels_last" else torch.contiguous_format
    module = module.to(memory_format=fmt)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if setting == "bf16-mixed"
                else contextlib.nullcontext())
    b = args.batch
    opt_kw = {k: v for k, v in cfg.optimizer.items() if k in ("lr", "betas", "eps", "weight_decay")}
    if model_name == "glow":
        flow = module.flow
        log_prob = torch.compile(flow.log_prob) if setting == "compile" else flow.log_prob
        opt = torch.optim.Adam(flow.parameters(), **opt_kw)
        dims = images[0].numel()

        def step(xs):
            x = xs[0]
            u = (x.float() + torch.rand_like(x, dtype=torch.float)) / 256
            with autocast:
                loss = -(log_prob(u) - dims * np.log(256)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    else:
        G, D = module.generator, module.discriminator
        if setting == "compile":
            G.compile()
            D.compile()
        opt_g = torch.optim.Adam(G.parameters(), **opt_kw)
        opt_d = torch.optim.Adam(D.parameters(), **opt_kw)
        n_critic = module.n_critic

        def noise():
            return torch.randn(b, module.latent_dim, device=device)

        def step(xs):  # n_critic batches: one per critic step
            for x in xs:
                real = (x.float() / 127.5 - 1).contiguous(memory_format=fmt)
                with autocast:
                    fake = G(noise()).detach()
                    if model_name == "wgan_gp":
                        eps = torch.rand(b, 1, 1, 1, device=device)
                        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
                        grad, = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
                        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
                        loss_d = D(fake).mean() - D(real).mean() + 10 * gp
                    else:
                        lr, lf = D(real), D(fake)
                        loss_d = (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
                                  + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            with autocast:
                out = D(G(noise()))
                loss_g = -out.mean() if model_name == "wgan_gp" else F.binary_cross_entropy_with_logits(
                    out, torch.ones_like(out))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

    data = images.to(device)
    batches = [data[i:i + b] for i in range(0, len(data) - b + 1, b)]
    per_step = 1 if model_name == "glow" else n_critic
    groups = [batches[i:i + per_step] for i in range(0, len(batches) - per_step + 1, per_step)]
    for i in range(max(args.warmup // per_step, 1)):
        step(groups[i % len(groups)])
    _sync()
    steps = max(args.steps // per_step, 1)
    start = time.perf_counter()
    for i in range(steps):
        step(groups[i % len(groups)])
    _sync()
    return steps * per_step * b / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu.py: no CUDA device here (use --device cpu for a smoke test; CPU figures mean nothing)")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (smoke test)"
    torch.backends.cudnn.benchmark = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            size = MODELS[model]
            images = torch.randint(0, 256, ((args.warmup + args.steps) * args.batch, 3, size, size), dtype=torch.uint8)
            data = Path(tmp) / f"{model}.npy"
            np.save(data, images.numpy())
            for setting in args.settings.split(","):
                out = Path(tmp) / f"{model}-{setting}"
                out.mkdir()
                cfg = compose(model, setting, args, data, out)
                ours = gen_runner_side(cfg, setting)
                plain = plain_side(cfg, model, setting, images, args)
                rows.append((model, size, setting, ours, plain))
                print(f"{model} {size}x{size} {setting}: gen-runner {ours:.0f} img/s, plain {plain:.0f} img/s, "
                      f"ratio {ours / plain:.3f}", flush=True)
    print(f"\n{name}, batch {args.batch}, {args.steps} timed steps after {args.warmup}\n")
    print("| model | size | setting | gen-runner img/s | plain img/s | ratio |\n|---|---|---|---|---|---|")
    for model, size, setting, ours, plain in rows:
        print(f"| {model} | {size}x{size} | {setting} | {ours:.0f} | {plain:.0f} | {ours / plain:.3f} |")


if __name__ == "__main__":
    main()
