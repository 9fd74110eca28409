"""The progressive-growing schedule (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of
GANs for Improved Quality, Stability, and Variation", sec. 3 and appendix A.1): images shown ->
the training phase.

Training starts at `start_resolution` (4x4) and stabilises there for `stable_images` real images;
then each doubling of the resolution has two phases: a fade-in of `fade_images` images, in which
the new blocks' weight alpha rises linearly from 0 to 1 with the images shown, and a stabilising
phase of `stable_images` images at alpha = 1. After the last fade-in (at the final resolution) the
stabilising phase lasts for the rest of training. The paper: 800k images per phase (the official
code's `lod_training_kimg` and `lod_transition_kimg`), minibatch 16 up to 128x128, then 14, 6, 3 at
256, 512 and 1024 (`batch_sizes`); during a fade-in the batch is the new resolution's, as the code.

A pure function of the count of images shown, so a run restores its phase exactly (mid-fade
included) from that one number; a StyleGAN progressive schedule (start 8x8) reuses it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gen_runner.errors import UserError

__all__ = ["Phase", "GrowingSchedule"]


@dataclass(frozen=True)
class Phase:
    """Where training is: phase `index` (0: stabilising at the start resolution, 2k - 1: fading in
    the k-th doubling, 2k: stabilising it), the `resolution` the nets run at, the new blocks'
    weight `alpha` (1 outside a fade-in) and the phase's `batch_size`."""

    index: int
    resolution: int
    alpha: float
    batch_size: int

    @property
    def fading(self) -> bool:
        return self.index % 2 == 1


def _doublings(low: int, high: int) -> int | None:
    """k with high = low * 2^k, or None."""
    k = 0
    while low < high:
        low, k = low * 2, k + 1
    return k if low == high else None


class GrowingSchedule:
    """images shown -> Phase, from `start_resolution` up to `final_resolution` (both powers of two).
    `key`: the config node the options come from, for error messages."""

    def __init__(self, final_resolution: int, start_resolution: int = 4, fade_images: int = 800_000,
                 stable_images: int = 800_000, batch_size: int = 16, batch_sizes: Mapping[int, int] | None = None,
                 key: str = "model.schedule"):
        for name, value in (("fade_images", fade_images), ("stable_images", stable_images),
                            ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{key}.{name}={value!r}: pass a whole number >= 1")
        if start_resolution < 4 or _doublings(4, start_resolution) is None:
            raise UserError(f"{key}.start_resolution={start_resolution}: pass a power of two >= 4")
        levels = _doublings(start_resolution, final_resolution)
        if levels is None:
            fits = start_resolution
            while fits < final_resolution:
                fits *= 2
            raise UserError(f"images of side {final_resolution}: growing doubles the side from {start_resolution}, "
                            f"so it must be {start_resolution} * 2^k: set data.size={fits} (or another "
                            f"{key}.start_resolution)")
        self.start_resolution, self.final_resolution, self.levels = start_resolution, final_resolution, levels
        self.fade_images, self.stable_images, self.batch_size = fade_images, stable_images, batch_size
        self.batch_sizes = {int(r): b for r, b in (batch_sizes or {}).items()}
        for r, b in self.batch_sizes.items():
            if _doublings(start_resolution, r) is None or r > final_resolution:
                raise UserError(f"{key}.batch_sizes has resolution {r}: the schedule runs at "
                                f"{self.resolutions}; drop it")
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise UserError(f"{key}.batch_sizes.{r}={b!r}: pass a whole number >= 1")

    @property
    def resolutions(self) -> list[int]:
        return [self.start_resolution * 2**k for k in range(self.levels + 1)]

    @property
    def growth_images(self) -> int:
        """Images shown before the final resolution's stabilising phase begins."""
        return self.levels * (self.fade_images + self.stable_images)

    def batch_size_at(self, resolution: int) -> int:
        return self.batch_sizes.get(resolution, self.batch_size)

    def phase(self, images_shown: int) -> Phase:
        if images_shown < 0:
            raise ValueError(f"images_shown={images_shown}: a count >= 0")
        k, into = divmod(images_shown - self.stable_images, self.fade_images + self.stable_images)
        if images_shown < self.stable_images:  # stabilising at the start resolution
            index, doublings, alpha = 0, 0, 1.0
        elif k >= self.levels:  # the final resolution, for good
            index, doublings, alpha = 2 * self.levels, self.levels, 1.0
        elif into < self.fade_images:
            index, doublings, alpha = 2 * k + 1, k + 1, into / self.fade_images
        else:
            index, doublings, alpha = 2 * k + 2, k + 1, 1.0
        resolution = self.start_resolution * 2**doublings
        return Phase(index, resolution, alpha, self.batch_size_at(resolution))
