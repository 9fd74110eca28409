"""Built-in image-to-image tasks made from real digits (scikit-learn's 8x8 digits or MNIST), for CPU
runs, demos and tests. Every function maps uint8 images [N, C, H, W] with `levels` grey levels to
uint8 images with the same levels (masks: float), deterministically or from a seed.

- edges2digits (Pix2Pix; Isola et al. 2017, "Image-to-Image Translation with Conditional
  Adversarial Networks", whose edges2shoes/handbags inputs are edge maps): the Sobel gradient
  magnitude, thresholded, as a binary edge map -> the digit.
- sr4 (SRGAN; Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
  Adversarial Network"): the image downsampled 4x with an antialiased bicubic kernel, as the paper's
  low-resolution inputs are -> the image.
- inpaint_center (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting"): the
  centre quarter (an H/2 x W/2 square) zeroed -> the image; or the paper's random blocks (blocks of
  a quarter of the side at seeded positions until a quarter of the image is covered).
- digits2thick (CycleGAN; Zhu et al. 2017, "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks"): domain B has thickened (3x3 grey-level dilation), then
  inverted (levels-1 - x) strokes.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gen_runner.data import images

__all__ = ["load_source", "sobel_edges", "downsample", "center_mask", "random_masks", "thicken_invert"]


def load_source(source: str, root: str | None, split: str, download: bool, size: int, fit: str
                ) -> tuple[Tensor, Tensor, int]:
    """The real digits a task is made from: (uint8 images [N, 1, size, size], labels, grey levels).
    `digits`: scikit-learn's 1,797 8x8 digits (17 levels); `mnist`: the IDX files of `split` in `root`."""
    if source == "digits":
        (x, y), levels = images.load_digits(), 17
    else:
        (x, y), levels = images.load_mnist(root, split, "mnist", download), 256
    return images.fit_size(x, size, fit, levels), y, levels


def sobel_edges(x: Tensor, levels: int, threshold: float) -> Tensor:
    """Binary edge maps: levels-1 where the Sobel gradient magnitude of x / (levels-1), divided by 4
    (so a sharp black-to-white step scores 1), exceeds `threshold`; 0 elsewhere. Zero padding."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([gx, gx.T])[:, None]
    unit = x.float() / (levels - 1)
    grad = F.conv2d(unit.flatten(0, 1)[:, None], kernels, padding=1)
    magnitude = grad.pow(2).sum(1).sqrt().view_as(unit) / 4
    return ((magnitude > threshold) * (levels - 1)).to(torch.uint8)


def downsample(x: Tensor, factor: int, levels: int) -> Tensor:
    """x shrunk `factor` times with an antialiased bicubic kernel, rounded to the grey levels."""
    h, w = x.shape[-2:]
    y = F.interpolate(x.float(), size=(h // factor, w // factor), mode="bicubic", align_corners=False, antialias=True)
    return y.round().clamp(0, levels - 1).to(torch.uint8)


def center_mask(h: int, w: int) -> Tensor:
    """float [1, h, w]: 1 on the centre H/2 x W/2 square (the missing pixels), 0 elsewhere."""
    mask = torch.zeros(1, h, w)
    mask[:, h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 1
    return mask


def random_masks(n: int, h: int, w: int, seed: int) -> Tensor:
    """float [n, 1, h, w]: for example i, blocks of (h/4) x (w/4) at positions drawn from (seed, i),
    added until at least a quarter of the pixels are covered."""
    bh, bw = max(1, h // 4), max(1, w // 4)
    masks = np.zeros((n, 1, h, w), dtype=np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        while masks[i].mean() < 0.25:
            top, left = rng.integers(h - bh + 1), rng.integers(w - bw + 1)
            masks[i, :, top : top + bh, left : left + bw] = 1
    return torch.from_numpy(masks)


def thicken_invert(x: Tensor, levels: int) -> Tensor:
    """Strokes thickened by a 3x3 grey-level dilation (max filter), then inverted: levels-1 - x."""
    return (levels - 1) - F.max_pool2d(x.float(), 3, stride=1, padding=1).to(torch.uint8)
