"""The normalization layers of the image-to-image nets, by name (`model.norm`).

- `batch`: BatchNorm that always normalizes with the current batch's statistics, at test time too,
  as pix2pix does (Isola et al. 2017, sec. 3.3: "we apply batch normalization using the statistics
  of the test batch"); with batch size 1 it is instance normalization with a learned scale and shift.
- `instance`: InstanceNorm without learned parameters (Ulyanov et al. 2016), pix2pix's and
  CycleGAN's code's `--norm instance`.
- `none`: no normalization.
"""
from __future__ import annotations

from torch import nn

__all__ = ["NORMS", "norm2d"]

NORMS = ("batch", "instance", "none")


def norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, track_running_stats=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}: choose one of {', '.join(NORMS)}")
