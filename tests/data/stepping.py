"""Consume a ResumableLoader the way the training loop does (its `consumed` count), across epochs."""
from __future__ import annotations


def run_batches(loader, steps: int) -> list[tuple]:
    """The next `steps` whole batches, the loader's position advanced as training advances it."""
    seen = []
    while len(seen) < steps:
        start = loader.consumed if loader.consumed < len(loader) else 0
        for i, batch in enumerate(loader, start=start):
            seen.append(tuple(batch))
            loader.consumed = i + 1
            if len(seen) == steps:
                break
    return seen


def same(u: list[tuple], v: list[tuple]) -> bool:
    """Two runs' batches are identical, part by part."""
    import torch

    return len(u) == len(v) and all(len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))
                                    for a, b in zip(u, v))
