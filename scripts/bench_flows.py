"""Every flow of the zoo on the 2-D densities, at one size and one step budget, beside a reference
library trained in the same process with the same loop: test NLL (and its gap to the true entropy
where the density is known) and training throughput, as a markdown table.

    python scripts/bench_flows.py [--steps 20000] [--datasets gauss8,checkerboard,moons]
        [--models maf,nsf,...] [--reference zuko] [--threads 1] [--out FILE]

Protocol (the issue's, after zuko/nflows/normflows examples): 5 transforms (couplings or MADE
layers) with 2 hidden layers, batch 256, Adam lr 1e-3 with cosine decay to 0, 100k training points
drawn once, NLL on 20k fresh points. MAF and NSF use 2 x 64 units like the reference; every other
flow gets the width h (2 x h units) that brings its parameter count closest to MAF's, the equal
budget (`--budget N` to choose another). The UMNN's integrand is shrunk (2 x 32 units, 8-dim
embedding, 20 quadrature steps) so that it trains at a comparable speed. FFJORD is its toy model, one
CNF block of 3 x h concat-squash units (dopri5, Hutchinson's trace in training, the exact one at test),
some 10-50x slower a step than the discrete flows, so it is run at a smaller --steps. The gap is mean(-log q(x))
- mean(-log p(x)) on those points, an unbiased estimate of KL(p || q) (>= 0 up to noise).
Our flows come from configs/model/<name>.yaml (with the sizes above overridden); the reference
flows (zuko's MAF and NSF, which is autoregressive with 8 bins on [-5, 5]) are never a project
dependency: `make bench-flows` installs zuko into .bench/ (pip --target, no dependencies) and puts
that on the path.
Throughput is steps/s of the whole training step (forward, backward, optimizer), one thread.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gen_runner.cli import register_resolvers
from gen_runner.configs import compose
from gen_runner.data import toy
from gen_runner.schema import register

MODELS = ["nice", "realnvp", "glow", "maf", "iaf", "nsf", "nsf_ar", "cubic_spline_flow", "naf", "sos", "umnn",
          "ffjord", "iresnet", "residual_flow"]
DATASETS = {"gauss8": toy.EightGaussians, "checkerboard": toy.Checkerboard, "moons": toy.Moons}
SIZE = {"num_layers": 5, "hidden": [64, 64]}
FIXED_WIDTH = ("maf", "nsf", "nsf_ar")  # the reference's size
# Options that are not the model's own but the protocol's: no batch norm between layers (the
# references have none; the flows' 2-D configs have none either), a smaller UMNN integrand.
OVERRIDES = {"maf": {"normalization": None}, "iaf": {"normalization": None},
             "umnn": {"transformer": {"hidden": [32, 32], "embedding": 8, "steps": 20}}}
# Layers chosen from the configs' groups (configs/model/flow/vector/<layer>/).
LAYERS = {"nsf_ar": ["model/flow/vector/structure=autoregressive"]}
# Continuous flows build their own flow in the model (no model.flow): the module's, its ODE net's
# width set (FFJORD: the toy experiments' one block of 3 hidden layers, the width matched to the budget).
CONTINUOUS = {"ffjord": lambda width: {"vector": {"hidden": [width] * 3}}}


def our_flow(name: str, width: int = 64) -> torch.nn.Module:
    """configs/model/<name>.yaml's flow for 2-D points, 5 layers of 2 x `width` hidden units."""
    register()
    register_resolvers()
    torch.manual_seed(0)  # the same initialization whatever was built before
    model = compose("train", [f"model={'nsf' if name == 'nsf_ar' else name}", *LAYERS.get(name, [])]).model
    if name in CONTINUOUS:
        return instantiate(OmegaConf.merge(model, CONTINUOUS[name](width)), data={"shape": [2]}).flow
    flow = model.flow
    vector = SIZE | {"hidden": [width, width]} | OVERRIDES.get(name, {})
    OmegaConf.set_struct(flow, False)  # the protocol may set options a config leaves at their default
    return instantiate(OmegaConf.merge(flow, {"vector": vector}))(data_shape=(2,))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def equal_budget(name: str, budget: int) -> torch.nn.Module:
    """The flow with the hidden width whose parameter count is closest to `budget`."""
    if name in FIXED_WIDTH:
        return our_flow(name)
    sizes = {width: count(our_flow(name, width)) for width in range(8, 129, 4)}
    return our_flow(name, min(sizes, key=lambda w: abs(sizes[w] - budget)))


def reference_flow(library: str, name: str):
    """The reference library's flow of the same size, as a module with log_prob(x)."""
    if library != "zuko":
        raise SystemExit(f"--reference {library}: only zuko is wired in")
    import zuko

    kind = {"maf": zuko.flows.MAF, "nsf_ar": zuko.flows.NSF}[name]
    lazy = kind(features=2, transforms=5, hidden_features=SIZE["hidden"])

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lazy = lazy

        def log_prob(self, x):
            return self.lazy().log_prob(x)

    return Wrapped()


def run(flow: torch.nn.Module, train: torch.Tensor, test: torch.Tensor, steps: int, batch: int, seed: int) -> dict:
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    indices = torch.randint(len(train), (steps, batch), generator=torch.Generator().manual_seed(seed))
    flow.train()
    start = time.perf_counter()
    for step in range(steps):
        loss = -flow.log_prob(train[indices[step]]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    elapsed = time.perf_counter() - start
    flow.eval()
    with torch.no_grad():
        nll = torch.cat([-flow.log_prob(x) for x in test.split(5000)]).double().mean().item()
    return {"nll": nll, "steps_per_s": steps / elapsed, "params": count(flow)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--reference", default="zuko", help="zuko, or none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, help="parameters per flow (default: MAF's at 2 x 64)")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget = args.budget or count(our_flow("maf"))
    rows = ["| data | flow | params | test NLL | gap to entropy | steps/s | vs reference |", "|---|---|---|---|---|---|---|"]
    for ds in args.datasets.split(","):
        distribution = DATASETS[ds]()
        train = distribution.sample(100_000, generator=torch.Generator().manual_seed(args.seed))
        test = distribution.sample(20_000, generator=torch.Generator().manual_seed(args.seed + 1))
        entropy = -distribution.log_prob(test).double().mean().item() if distribution.has_log_prob else math.nan
        for name in args.models.split(","):
            ours = run(equal_budget(name, budget), train, test, args.steps, args.batch, args.seed)
            results = [(name, ours, "")]
            if args.reference != "none" and name in ("maf", "nsf_ar"):
                ref = run(reference_flow(args.reference, name), train, test, args.steps, args.batch, args.seed)
                versus = f"NLL {ours['nll'] - ref['nll']:+.3f}, speed x{ours['steps_per_s'] / ref['steps_per_s']:.2f}"
                results = [(name, ours, versus), (f"{args.reference} {name}", ref, "")]
            for label, r, versus in results:
                gap = f"{r['nll'] - entropy:.3f}" if not math.isnan(entropy) else "-"
                rows.append(f"| {ds} | {label} | {r['params']:,} | {r['nll']:.3f} | {gap} | {r['steps_per_s']:.3g} | {versus} |")
                print(rows[-1], flush=True)
    text = f"Flows on 2-D densities, {args.steps} steps, batch {args.batch}, {args.threads} thread(s)\n\n" + "\n".join(rows)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
