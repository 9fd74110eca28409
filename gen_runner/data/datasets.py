"""Split datasets beyond plain tensors: images decoded from files on demand, seeded random crops and
flips, paired files (one crop and flip for both halves), and unpaired domains.

All of them are `tagged` (data/loader.py): they receive `(epoch, index)` pairs and draw every
random choice of an example from `example_rng(seed, epoch, index)`, so the augmentation of each
example in each epoch is fixed by the seed, in any worker and across a resume. Batches are fetched
whole (`__getitems__`). `augment=False` (val and test splits), ordered passes (epoch None:
evaluation) and `images()` give the plain view: a centre crop and no flip. `images(n)` is what evaluation compares against: the first n images,
plain (a paired set's targets, an unpaired set's domain B).

Augmentation as in pix2pix/CycleGAN's code (Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks"; Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"): resize to load_size x load_size, a random crop_size crop,
a random horizontal flip; ProGAN/StyleGAN's mirror augmentation for image folders.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gen_runner.data import images as io
from gen_runner.data.loader import example_rng

__all__ = ["Transform", "ImageFiles", "FlippedTensors", "PairedFiles", "Unpaired"]


@dataclass(frozen=True)
class Transform:
    """Resize (`square`: to size x size, pix2pix's; `shorter`: the shorter side to size, aspect kept),
    crop `crop` x `crop` (random or centred), flip horizontally at random (`flip`)."""

    size: int
    crop: int
    channels: int = 3
    resize: str = "shorter"
    random_crop: bool = False
    flip: bool = False

    def draws(self, rng: np.random.Generator | None, w: int, h: int) -> tuple[tuple[int, int, int, int], bool]:
        """The crop box in a w x h image and whether to flip; centred and unflipped without `rng`."""
        if rng is None or not self.random_crop:
            box = io.center_box(w, h, self.crop)
        else:
            left, top = int(rng.integers(w - self.crop + 1)), int(rng.integers(h - self.crop + 1))
            box = (left, top, left + self.crop, top + self.crop)
        return box, rng is not None and self.flip and bool(rng.random() < 0.5)

    def __call__(self, ims: list[Image.Image], rng: np.random.Generator | None) -> list[torch.Tensor]:
        """The same resize, crop and flip for each image (a pair's halves), as uint8 [C, crop, crop]."""
        ims = [im.resize((self.size, self.size), Image.Resampling.BICUBIC) if self.resize == "square"
               else io.resize_shorter(im, self.size) for im in ims]
        box, flip = self.draws(rng, *ims[0].size)
        out = [io.to_tensor(im.crop(box)) for im in ims]
        return [x.flip(-1) if flip else x for x in out]


class _Tagged(Dataset):
    """Fetches batches of `(epoch, index)` pairs: `item(index, rng)` stacked part by part."""

    tagged = True

    def __init__(self, n: int, seed: int, augment: bool):
        self.n, self.seed, self.augment = n, seed, augment

    def __len__(self) -> int:
        return self.n

    def rng(self, epoch: int | None, i: int, *stream: int) -> np.random.Generator | None:
        """Example i's draws in `epoch`; None (the plain view) without augmentation or epoch."""
        return example_rng(self.seed, epoch, i, *stream) if self.augment and epoch is not None else None

    def item(self, i: int, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def __getitems__(self, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        items = [self.item(i, self.rng(epoch, i)) for epoch, i in pairs]
        return tuple(torch.stack(part) for part in zip(*items))


class ImageFiles(_Tagged):
    """Image files decoded, resized, cropped and flipped on demand; `(x,)` or `(x, y)` batches."""

    def __init__(self, files: list[Path], labels: torch.Tensor | None, transform: Transform, seed: int,
                 augment: bool):
        super().__init__(len(files), seed, augment)
        self.files, self.labels, self.transform = files, labels, transform

    def image(self, i: int, rng=None) -> torch.Tensor:
        return self.transform([io.open_image(self.files[i], self.transform.channels)], rng)[0]

    def item(self, i, rng):
        x = self.image(i, rng)
        return (x,) if self.labels is None else (x, self.labels[i])

    def images(self, n: int) -> torch.Tensor:
        return torch.stack([self.image(i) for i in range(min(n, self.n))])


class FlippedTensors(_Tagged):
    """In-memory images `(x,)` or `(x, y)` flipped at random exactly as `ImageFiles` with the same
    transform would flip them: streamed and in-memory runs see the same batches."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], transform: Transform, seed: int):
        super().__init__(len(tensors[0]), seed, augment=True)
        self.tensors, self.transform = tensors, transform

    def __getitems__(self, pairs):
        idx = torch.tensor([i for _, i in pairs])
        w, h = self.tensors[0].shape[-1], self.tensors[0].shape[-2]
        flip = torch.tensor([self.transform.draws(self.rng(e, i), w, h)[1] for e, i in pairs])
        x = self.tensors[0][idx]
        x[flip] = x[flip].flip(-1)
        return (x, *(t[idx] for t in self.tensors[1:]))

    def images(self, n: int) -> torch.Tensor:
        return self.tensors[0][:n]


class PairedFiles(_Tagged):
    """Pairs `(input, target, label=-1)`: each a side-by-side A|B file (`files[i]` a path) or two
    files (`files[i]` a tuple (A, B)), with one crop and flip for both; `swap`: B is the input (BtoA)."""

    def __init__(self, files: list, transform: Transform, seed: int, augment: bool, swap: bool = False):
        super().__init__(len(files), seed, augment)
        self.files, self.transform, self.swap = files, transform, swap

    def halves(self, i: int) -> list[Image.Image]:
        entry, c = self.files[i], self.transform.channels
        if isinstance(entry, tuple):
            return [io.open_image(p, c) for p in entry]
        im = io.open_image(entry, c)
        w, h = im.size
        return [im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h))]

    def item(self, i, rng):
        a, b = self.transform(self.halves(i), rng)
        return (b, a, torch.tensor(-1)) if self.swap else (a, b, torch.tensor(-1))

    def images(self, n: int) -> torch.Tensor:
        return torch.stack([self.item(i, None)[1] for i in range(min(n, self.n))])


class Unpaired(_Tagged):
    """Two domains drawn independently, `(a, b, label_a, label_b)`: example i of an epoch pairs A's
    i-th (mod |A|) with B's i-th (mod |B|) in B's own seeded permutation of that epoch (B in order
    for val and test), as CycleGAN's unaligned loader draws B at random. Its length is the larger
    domain's. Each domain is an `ImageFiles` or a `(x, y)` pair of tensors; their draws are independent."""

    def __init__(self, a, b, seed: int, augment: bool):
        self.a, self.b = a, b
        self.na, self.nb = len(a if isinstance(a, Dataset) else a[0]), len(b if isinstance(b, Dataset) else b[0])
        super().__init__(max(self.na, self.nb), seed, augment)
        self._order = (None, None)  # (epoch, B's order in it), kept between batches

    def _b_order(self, epoch: int | None) -> torch.Tensor:
        if not self.augment or epoch is None:
            return torch.arange(self.nb)
        if self._order[0] != epoch:
            rng = example_rng(self.seed, epoch, 1 << 40)  # an index no example has
            self._order = (epoch, torch.from_numpy(rng.permutation(self.nb)))
        return self._order[1]

    @staticmethod
    def _fetch(domain, idx: list[int], rngs: list) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(domain, ImageFiles):
            x = torch.stack([domain.image(i, r) for i, r in zip(idx, rngs)])
            y = torch.full((len(idx),), -1) if domain.labels is None else domain.labels[idx]
            return x, y
        x, y = domain
        return x[idx], y[idx]

    def __getitems__(self, pairs):
        orders = {e: self._b_order(e) for e in {e for e, _ in pairs}}
        ia = [i % self.na for _, i in pairs]
        ib = [int(orders[e][i % self.nb]) for e, i in pairs]
        a, ya = self._fetch(self.a, ia, [self.rng(e, i, 0) for e, i in pairs])
        b, yb = self._fetch(self.b, ib, [self.rng(e, i, 1) for e, i in pairs])
        return a, b, ya, yb

    def images(self, n: int) -> torch.Tensor:
        b = self.b
        return b.images(n) if isinstance(b, ImageFiles) else b[0][:n]
