"""Latent walks of any generator (`gen-runner sample mode=interpolate|arithmetic`): the latent-space
probes of Radford, Metz & Chintala 2015 ("Unsupervised Representation Learning with DCGANs",
sec. 6), for a GAN's latent z or a flow's base sample.

- Interpolation (sec. 6.1): rows of `steps` samples decoded from points on a path between two
  random latents, the row's endpoints. `linear`: (1 - t) a + t b. `slerp` (White 2016, "Sampling
  Generative Networks", sec. 2.1): the great-circle path
  sin((1 - t) W) / sin W a + sin(t W) / sin W b, W the angle between a and b, whose norm moves
  smoothly between |a| and |b|; a straight line between two Gaussian latents, whose norms
  concentrate near sqrt(d), cuts through the low-norm middle the prior almost never draws (at
  t = 1/2 the norm drops to about sqrt(d / 2)). `auto` takes slerp for standard-normal noise (GANs
  with `model.latent=normal`, flows with a Gaussian base) and linear otherwise (U(-1, 1)^d latents,
  whose cube the great circle can leave; NICE's logistic base).
- Vector arithmetic (sec. 6.3, fig. 7): z = mean(A) - mean(B) + mean(C), each operand the average
  latent of a group of samples (three in the paper) that share a concept, e.g. "smiling woman" -
  "neutral woman" + "neutral man". The groups are indices into the `num_samples` samples that
  `mode=samples` draws from the same `seed`: look at that grid, pick the groups. The figure has a
  row per operand (its samples, then the decoded mean) and the result row: G(z), then G(z + u),
  u ~ U(-0.25, 0.25)^d as in the paper's fig. 7. A conditional model needs no class-mean trick: its
  label already carries the class, so the operands are decoded with their first sample's label and
  the result row keeps z and swaps the label: G(z, y) for every class y (a "style" fixed across
  classes). No renormalisation of the averaged latents (the paper has none): a mean of k Gaussian
  latents has a 1/sqrt(k) smaller norm.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from gen_runner.errors import UserError

__all__ = ["lerp", "slerp", "interpolate", "interpolation_rows", "vector_arithmetic"]

JITTER = 0.25  # the paper's fig. 7: uniform noise of +-0.25 added to the result vector


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b for a, b [B, ...] and t [T]: [B, T, ...]."""
    t = t.reshape(1, -1, *([1] * (a.dim() - 1)))
    return (1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """White 2016's spherical interpolation, each example flattened: [B, T, ...]. Falls back to the
    straight line where a and b are (anti)parallel, where the great circle is undefined."""
    a_flat, b_flat = a.flatten(1), b.flatten(1)
    cos = torch.nn.functional.cosine_similarity(a_flat, b_flat, dim=1).clamp(-1, 1)
    omega = torch.arccos(cos)[:, None]  # [B, 1]
    sin = torch.sin(omega)
    tt = t[None, :]  # [1, T]
    parallel = sin.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1 - tt, torch.sin((1 - tt) * omega) / safe)
    wb = torch.where(parallel, tt, torch.sin(tt * omega) / safe)
    out = wa[..., None] * a_flat[:, None] + wb[..., None] * b_flat[:, None]
    return out.reshape(len(a), len(t), *a.shape[1:])


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, kind: str) -> torch.Tensor:
    """`steps` points from a to b (both included) along `kind` (linear or slerp): [B, steps, ...]."""
    if steps < 2:
        raise UserError(f"mode.steps={steps}: an interpolation needs at least its two endpoints (steps >= 2)")
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device)
    if kind == "linear":
        return lerp(a, b, t)
    if kind == "slerp":
        return slerp(a, b, t)
    raise UserError(f"mode.interpolation={kind!r}: choose auto, linear or slerp")


def interpolation_rows(model, rows: int, steps: int, kind: str, generator: torch.Generator,
                       labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(noise [rows * steps, ...], labels [rows * steps] or None): `rows` paths between pairs of the
    model's random latents, a conditional model's row at one label (`labels` [rows], else drawn)."""
    if kind == "auto":
        kind = "slerp" if model.gaussian_noise else "linear"
    noise, labels = model.draw_inputs(2 * rows, generator, None if labels is None else labels.repeat(2))
    path = interpolate(noise[:rows], noise[rows:], steps, kind).flatten(0, 1)
    return path, None if labels is None else labels[:rows].repeat_interleave(steps)


def _groups(groups: Sequence[Sequence[int]] | None, group_size: int, pool: int) -> list[list[int]]:
    if groups is None:  # consecutive blocks: samples 0..k-1, k..2k-1, 2k..3k-1 of the seed's grid
        if group_size < 1:
            raise UserError(f"mode.group_size={group_size}: average at least one latent per operand")
        groups = [range(i * group_size, (i + 1) * group_size) for i in range(3)]
    groups = [list(g) for g in groups]
    if len(groups) != 3 or not all(groups):
        raise UserError(f"mode.groups={groups}: give three non-empty lists of sample indices (A - B + C)")
    if any(not 0 <= i < pool for g in groups for i in g):
        raise UserError(f"mode.groups={groups}: indices must lie in 0..{pool - 1}, the num_samples={pool} "
                        "samples of this seed (raise num_samples)")
    return groups


def vector_arithmetic(model, pool: int, generator: torch.Generator, groups: Sequence[Sequence[int]] | None = None,
                      group_size: int = 3) -> dict[str, torch.Tensor | None]:
    """z = mean(A) - mean(B) + mean(C) over the groups' latents among the `pool` samples of
    `generator`'s seed. Returns the inputs to decode: `operand_noise` [3, w + 1, ...] (each group's
    w latents, w the largest group, shorter groups repeating their last, then its mean),
    `operand_labels` [3, w + 1] or None, `result_noise` [R, ...] and `result_labels` [R] or None
    (R = w + 1: z and w jittered copies; conditional: z for each of the K classes)."""
    groups = _groups(groups, group_size, pool)
    noise, labels = model.draw_inputs(pool, generator)
    width = max(map(len, groups))
    padded = [g + [g[-1]] * (width - len(g)) for g in groups]
    means = torch.stack([noise[g].mean(0) for g in groups])  # [3, ...]
    operands = torch.cat([noise[torch.tensor(padded)], means[:, None]], dim=1)
    z = means[0] - means[1] + means[2]
    if labels is None:
        jitter = torch.rand(width, *z.shape, generator=generator).to(z.device) * 2 * JITTER - JITTER
        return {"operand_noise": operands, "operand_labels": None,
                "result_noise": torch.cat([z[None], z + jitter]), "result_labels": None}
    operand_labels = torch.cat([labels[torch.tensor(padded)], labels[[g[0] for g in groups]][:, None]], dim=1)
    classes = torch.arange(model.num_classes, device=z.device)
    return {"operand_noise": operands, "operand_labels": operand_labels,
            "result_noise": z.expand(model.num_classes, *z.shape), "result_labels": classes}
