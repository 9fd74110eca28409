"""LightningDataModules: 2-D toy distributions, bundled digits, MNIST-style IDX sets, your files.

Every module yields batches `(x,)` or `(x, y)` with labels. Points are float32 `[B, D]`; images
are their discrete pixel values as uint8 `[B, C, H, W]` with `num_levels` grey levels. Each model
maps images to what it needs on the device (GANs: [-1, 1]; flows: uniformly dequantized values),
so bits/dim is measured against the discrete data. Splits are seeded and deterministic.

Image-to-image data (`describe()["kind"]`): paired batches are `(input, target, labels)` (inpainting
adds `mask`, float [B, 1, H, W], 1 where pixels are missing), unpaired ones `(a, b, label_a,
label_b)`; labels are -1 where unknown. `shape` is the target's (domain B's), `input_shape` the
input's (domain A's). `images(split, n)` gives the real images evaluation compares against (the
targets, domain B), whether held in memory or streamed from disk.

Semi-supervised data (`labels_per_class=N`, labelled data only): the train split keeps the labels
of N seeded examples per class and hides the others (-1), and its batches are
`(x, y, x_labelled, y_labelled)`: the labelled set tiled, in seeded permutations, to the split's
length, so each batch has as many labelled examples as unlabelled ones, as Salimans et al. 2016's
code feeds them. Val and test keep every label. Unsupervised models read `x` alone, classifiers
the labelled pair.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from gen_runner.data import cifar, folders, images, translation
from gen_runner.data.datasets import FlippedTensors, ImageFiles, PairedFiles, Transform, Unpaired
from gen_runner.data.binarized import BinarizedData, load_static_mnist
from gen_runner.data.loader import ResumableLoader, TensorData
from gen_runner.data.toy import Toy2D
from gen_runner.errors import UserError

__all__ = [
    "GenDataModule",
    "ToyDataModule",
    "DigitsDataModule",
    "MNISTDataModule",
    "TensorFileDataModule",
    "ImageFolderDataModule",
    "StackedDataModule",
    "BinarizedDataModule",
    "DigitTasksDataModule",
    "ThickDigitsDataModule",
    "PairedFolderDataModule",
    "UnpairedFolderDataModule",
    "CIFAR10DataModule",
]


def check_count(name: str, value, low: int = 1) -> None:
    """data.<name> must be a whole number >= low; one line otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"data.{name}={value!r}: pass a whole number >= {low}")


def check_fraction(name: str, value) -> None:
    """data.<name> must be a number in [0, 1); one line otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"data.{name}={value!r}: pass a fraction in [0, 1)")


def check_choice(name: str, value, choices: tuple) -> None:
    """data.<name> must be one of `choices`; one line otherwise."""
    if value not in choices:
        raise UserError(f"data.{name}={value!r}: choose {' or '.join(map(str, choices))}")


def check_fit(size, fit: str, native: int) -> None:
    """data.size/data.fit for images `native` pixels wide: padding cannot shrink them."""
    check_count("size", size)
    check_choice("fit", fit, ("pad", "resize"))
    if fit == "pad" and size < native:
        raise UserError(f"data.size={size}: padding cannot shrink {native}x{native} images; pass data.size>={native} "
                        "or data.fit=resize")


class GenDataModule(L.LightningDataModule):
    """Shared loading, splitting and loaders. Subclasses implement `_load()`."""

    num_levels: int | None = None  # grey levels of image data; None for points
    channel_modes = False  # Stacked MNIST: each channel an independent digit, the triple a mode (image metrics)

    def __init__(self, batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, labels_per_class: int | None = None):
        super().__init__()
        if labels_per_class is not None and (isinstance(labels_per_class, bool) or not isinstance(labels_per_class, int)
                                             or labels_per_class < 1):
            raise UserError(f"data.labels_per_class={labels_per_class!r}: keep a whole number of labels per class, "
                            "at least 1 (or null to keep every label)")
        check_count("batch_size", batch_size)
        check_count("num_workers", num_workers, 0)
        check_fraction("val_fraction", val_fraction)
        check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1:
            raise UserError(f"data.val_fraction={val_fraction} + data.test_fraction={test_fraction} leave no training "
                            "data: keep their sum below 1")
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.labels_per_class = labels_per_class
        self.splits: dict[str, TensorData] | None = None

    # -- what subclasses provide -------------------------------------------------------------
    def _load(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All examples (points or uint8 images) and their labels, if any."""
        raise NotImplementedError

    def _split_indices(self, n: int, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Example indices of each split: a seeded permutation cut by the val and test fractions."""
        n_val, n_test = round(n * self.val_fraction), round(n * self.test_fraction)
        if n - n_val - n_test < self.batch_size:
            raise UserError(f"{type(self).__name__}: {n} examples leave fewer than one batch of "
                            f"{self.batch_size} for training; lower data.batch_size or the fractions")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed if seed is None else seed))
        return {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}

    def _split(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        x, y = self._load()
        return {k: (x[i], None if y is None else y[i]) for k, i in self._split_indices(len(x)).items()}

    # -- Lightning hooks -----------------------------------------------------------------------
    def _few_labels(self, parts: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> tuple[torch.Tensor, ...]:
        """The train split as (x, y, x_labelled, y_labelled): `labels_per_class` labels of each class
        kept (the first of each class in a permutation seeded by the data seed), the others -1; the
        labelled examples tiled in fresh seeded permutations to the split's length."""
        n = self.labels_per_class
        x, y = parts["train"]
        if y is None:
            raise UserError(f"data.labels_per_class={n}: {type(self).__name__} has no labels; use labelled data "
                            "(digits, mnist, fashion_mnist, a tensor_file with labels y, an image_folder with class "
                            "subfolders) or drop data.labels_per_class")
        num_classes = int(max(v.max() for _, v in parts.values() if v is not None and len(v))) + 1
        counts = torch.bincount(y, minlength=num_classes)
        short = [c for c in range(num_classes) if counts[c] < n]
        if short:
            raise UserError(f"data.labels_per_class={n}: class {short[0]} has only {int(counts[short[0]])} training "
                            f"examples ({len(short)} classes have fewer than {n}); lower data.labels_per_class")
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(y), generator=g)
        keep = torch.cat([order[y[order] == c][:n] for c in range(num_classes)])
        hidden = torch.full_like(y, -1)
        hidden[keep] = y[keep]
        copies = -(-len(y) // len(keep))
        tiled = torch.cat([keep[torch.randperm(len(keep), generator=g)] for _ in range(copies)])[: len(y)]
        return x, hidden, x[tiled], y[tiled]

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self._datasets()

    def _datasets(self) -> dict:
        """Each split's dataset (in-memory tensors here; streamed or paired data override it)."""
        parts = self._split()
        splits = {k: (x,) if y is None else (x, y) for k, (x, y) in parts.items()}
        if self.labels_per_class is not None:
            splits["train"] = self._few_labels(parts)
        return {k: TensorData(*tensors) for k, tensors in splits.items()}

    def train_dataloader(self) -> ResumableLoader:
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        return self.loader("train", shuffle=True, drop_last=True, num_replicas=replicas, rank=rank)

    def val_dataloader(self) -> ResumableLoader:
        return self.loader("val")

    def test_dataloader(self) -> ResumableLoader:
        return self.loader("test")

    def loader(self, split: str, shuffle: bool = False, drop_last: bool = False, **kw) -> ResumableLoader:
        """A loader over one split (in order, all examples, unless told otherwise)."""
        self.setup()
        data = self.splits[split]
        if len(data) == 0:
            raise UserError(f"the {split} split is empty; raise data.{split}_fraction or use more data")
        return ResumableLoader(data, self.batch_size, self.seed, shuffle=shuffle, drop_last=drop_last,
                               num_workers=self.num_workers, **kw)

    def images(self, splits: str | tuple[str, ...] | list[str], n: int | None = None) -> torch.Tensor:
        """The first `n` real examples (all without n) of the split(s), in order and without
        augmentation, as stored (uint8 images): what evaluation compares samples with, the targets
        of paired data and domain B of unpaired data. Streamed data is decoded here."""
        self.setup()
        out, left = [], n
        for split in [splits] if isinstance(splits, str) else splits:
            data = self.splits[split]
            out.append(data.images(len(data) if left is None else left))
            left = None if left is None else left - len(out[-1])
            if left is not None and left <= 0:
                break
        return torch.cat(out)

    # -- what models need to know ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (D,) for points, (C, H, W) for images (a paired set's targets)."""
        return tuple(self.images("train", 1).shape[1:])

    @property
    def kind(self) -> str:
        return "images" if len(self.shape) == 3 else "points"

    @property
    def num_classes(self) -> int | None:
        self.setup()
        labels = [d.tensors[1] for d in self.splits.values() if len(getattr(d, "tensors", ())) > 1 and len(d)]
        return int(max(y.max() for y in labels)) + 1 if labels else None

    def describe(self) -> dict:
        """What a checkpoint records about its data, so eval and sample need no data at all; the
        training batch size lets a model refuse one it cannot split (PacGAN's packs) before training."""
        info = {"shape": list(self.shape), "kind": self.kind, "num_levels": self.num_levels,
                "num_classes": self.num_classes, "batch_size": self.batch_size}
        if self.labels_per_class is not None:  # semi-supervised data: the train split hides most labels
            info["labels_per_class"] = self.labels_per_class
        if self.kind in ("paired", "unpaired"):  # image-to-image data: `shape` is the target's (domain B's)
            info["input_shape"] = list(self.input_shape)
        return info

    def _carve(self, found: dict[str, list]) -> dict[str, list]:
        """Files found per split; train alone is cut into train/val/test by the fractions."""
        if set(found) == {"train"}:
            files = found["train"]
            return {k: [files[i] for i in idx] for k, idx in self._split_indices(len(files)).items()}
        if len(found["train"]) < self.batch_size:
            raise UserError(f"{type(self).__name__}: {len(found['train'])} training examples make less than one "
                            f"batch of {self.batch_size}; lower data.batch_size")
        return found


class ToyDataModule(GenDataModule):
    """2-D toy distributions: `num_train` points drawn once from the seed; val and test drawn afresh."""

    def __init__(self, distribution: Toy2D, num_train: int = 100_000, num_val: int = 5000,
                 num_test: int = 5000, batch_size: int = 100, num_workers: int = 0, seed: int = 0):
        super().__init__(batch_size, num_workers, seed)
        for name, n in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            check_count(name, n)
        self.distribution = distribution
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    def _split(self):
        out = {}
        for i, (split, n) in enumerate(self.sizes.items()):
            g = torch.Generator().manual_seed(self.seed * 1000 + i)
            out[split] = (self.distribution.sample(n, generator=g), None)
        return out


class DigitsDataModule(GenDataModule):
    """scikit-learn's bundled 8x8 digits (Alpaydin & Kaynak 1998): 1,797 images, 17 grey levels;
    `size`/`fit`: padded or resized (bilinear) to size x size, e.g. 32 for progressive growing."""

    num_levels = 17

    def __init__(self, size: int = 8, fit: str = "resize", **kwargs):
        super().__init__(**kwargs)
        check_fit(size, fit, 8)
        self.size, self.fit = size, fit

    def _load(self):
        x, y = images.load_digits()
        return images.fit_size(x, self.size, self.fit, self.num_levels), y


class MNISTDataModule(GenDataModule):
    """MNIST or Fashion-MNIST from IDX files in `root`; `split` picks the file set (train/test);
    `size`/`fit`: padded (LeNet's 32x32 frame) or resized to size x size."""

    num_levels = 256

    def __init__(self, root: str, split: str = "train", variant: str = "mnist", download: bool = False,
                 size: int = 28, fit: str = "pad", **kwargs):
        super().__init__(**kwargs)
        check_choice("split", split, ("train", "test"))
        check_fit(size, fit, 28)
        self.root, self.split, self.variant, self.download = Path(root), split, variant, download
        self.size, self.fit = size, fit

    def prepare_data(self) -> None:
        if self.download:
            images.load_mnist(self.root, self.split, self.variant, download=True)

    def _load(self):
        try:
            x, y = images.load_mnist(self.root, self.split, self.variant, download=False)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from e
        return images.fit_size(x, self.size, self.fit, self.num_levels), y


class StackedDataModule(GenDataModule):
    """Stacked MNIST (Metz et al. 2017, unrolled GANs; VEEGAN; PacGAN): every example stacks three
    digit images, drawn independently (seeded), as its three channels; its label is the triple
    100 a + 10 b + c, so there are 1,000 modes. `source=digits` stacks scikit-learn's 8x8 digits."""

    channel_modes = True

    def __init__(self, source: str = "mnist", root: str | None = None, split: str = "train",
                 download: bool = False, num_examples: int = 128_000, **kwargs):
        super().__init__(**kwargs)
        check_count("num_examples", num_examples)
        if source not in ("mnist", "digits"):
            raise UserError(f"data.source={source!r}: choose mnist or digits")
        self.source, self.num_examples = source, num_examples
        self.mnist = MNISTDataModule(root, split, "mnist", download) if source == "mnist" else None
        self.num_levels = 256 if source == "mnist" else DigitsDataModule.num_levels

    def prepare_data(self) -> None:
        if self.mnist is not None:
            self.mnist.prepare_data()

    @property
    def num_classes(self) -> int:
        return 1000

    def _load(self):
        x, y = self.mnist._load() if self.mnist is not None else images.load_digits()
        g = torch.Generator().manual_seed(self.seed + 1)
        idx = torch.randint(len(x), (self.num_examples, 3), generator=g)
        return x[idx].squeeze(2), y[idx] @ torch.tensor([100, 10, 1])


class TensorFileDataModule(GenDataModule):
    """Your own points (N x D) or images (N x C x H x W: uint8, or floats in [0, 1]) from a file."""

    def __init__(self, path: str, num_levels: int = 256, **kwargs):
        super().__init__(**kwargs)
        check_count("num_levels", num_levels, 2)
        self.path, self._levels = Path(path), num_levels

    def _load(self):
        try:
            x, y = images.load_tensor_file(self.path)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"data.path={self.path}: {e}") from e
        if x.dim() == 2:
            return x.float(), y
        self.num_levels = self._levels
        if x.dtype != torch.uint8:
            if x.min() < 0 or x.max() > 1:
                raise UserError(f"data.path={self.path}: float images must lie in [0, 1] "
                                f"(found [{x.min():.3g}, {x.max():.3g}]); save uint8 pixels or rescale")
            x = (x * (self._levels - 1)).round().to(torch.uint8)
        return x, y


class ImageFolderDataModule(GenDataModule):
    """Images below `path` (class subfolders become labels), the shorter side resized to `size` and
    centre-cropped; `flip`: a random horizontal flip of training images (ProGAN/StyleGAN's mirror
    augmentation), seeded per (seed, epoch, example). Held in memory while the decoded pixels fit in
    `in_memory_limit` MiB; beyond it, or with `stream=true`, streamed: each image decoded when its
    batch is drawn, by the loader's workers. Both give the same batches."""

    num_levels = 256

    def __init__(self, path: str, size: int = 32, channels: int = 3, flip: bool = False, stream: bool = False,
                 in_memory_limit: int = 4096, **kwargs):
        super().__init__(**kwargs)
        check_count("size", size)
        check_choice("channels", channels, (1, 3))
        check_count("in_memory_limit", in_memory_limit, 0)
        self.path, self.size, self.channels, self.flip = Path(path), size, channels, flip
        self.stream, self.in_memory_limit = stream, in_memory_limit
        self.transform = Transform(size, size, channels, flip=flip)
        self.streamed: bool | None = None  # decided at setup

    def _files(self):
        try:
            return images.list_image_folder(self.path)
        except FileNotFoundError as e:
            raise UserError(f"data.path={self.path}: {e}") from e

    def _load(self):
        files, labels = self._files()
        try:
            return torch.stack([images.read_image(f, self.size, self.channels) for f in files]), labels
        except ValueError as e:
            raise UserError(f"data.path={self.path}: {e}") from e

    def _datasets(self) -> dict:
        files, labels = self._files()
        self.streamed = self.stream or len(files) * self.channels * self.size**2 > self.in_memory_limit * 2**20
        if not self.streamed:
            splits = super()._datasets()
            if self.flip:
                splits["train"] = FlippedTensors(splits["train"].tensors, self.transform, self.seed)
            return splits
        if self.labels_per_class is not None:
            raise UserError(f"data.labels_per_class needs the images in memory, but {len(files)} images of {self.size}"
                            f"x{self.size} exceed data.in_memory_limit={self.in_memory_limit} MiB: raise it "
                            "(and drop data.stream)")
        return {k: ImageFiles([files[i] for i in idx], None if labels is None else labels[idx], self.transform,
                              self.seed, augment=k == "train")
                for k, idx in self._split_indices(len(files)).items()}

    @property
    def num_classes(self) -> int | None:
        self.setup()
        if not self.streamed:
            return super().num_classes
        labels = [d.labels for d in self.splits.values() if d.labels is not None and len(d)]
        return int(max(y.max() for y in labels)) + 1 if labels else None


class _DigitSource(GenDataModule):
    """Image-to-image tasks built from real digits (data/translation.py): scikit-learn's 8x8 digits
    (`source=digits`) or MNIST's `split` file set in `root` (`source=mnist`), brought to `size` x
    `size` (`fit`: pad or resize) before the task is made. Class labels are kept."""

    def __init__(self, source: str = "digits", root: str | None = None, split: str = "test", download: bool = False,
                 size: int = 16, fit: str = "resize", **kwargs):
        super().__init__(**kwargs)
        check_choice("source", source, ("digits", "mnist"))
        check_choice("split", split, ("train", "test"))
        check_fit(size, fit, 8 if source == "digits" else 28)
        if source == "mnist" and not root:
            raise UserError("data.source=mnist needs data.root=<folder of MNIST IDX files> "
                            "(e.g. ../shared/data/mnist with data.split=test)")
        self.source, self.root, self.split, self.download, self.size, self.fit = source, root, split, download, size, fit
        self.num_levels = 17 if source == "digits" else 256

    def prepare_data(self) -> None:
        if self.source == "mnist" and self.download:
            images.load_mnist(self.root, self.split, "mnist", download=True)

    def _digits(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            x, y, _ = translation.load_source(self.source, self.root, self.split, False, self.size, self.fit)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"data.root={self.root}: {e}") from e
        return x, y

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (domain A) image."""
        self.setup()
        return tuple(self.splits["train"].tensors[0].shape[1:])


class DigitTasksDataModule(_DigitSource):
    """Paired image-to-image tasks from real digits, batches `(input, target, labels)`:
    `task=edges` (edges2digits: a thresholded Sobel edge map -> the digit; `edge_threshold`),
    `task=sr` (sr4: `factor`x bicubic-downsampled -> the digit), `task=inpaint` (inpaint_center:
    `mask=center` the centre quarter, or `mask=random` blocks, zeroed -> the digit; batches add
    the mask, float [B, 1, H, W], 1 where missing)."""

    def __init__(self, task: str, edge_threshold: float = 0.4, factor: int = 4, mask: str = "center", **kwargs):
        super().__init__(**kwargs)
        check_choice("task", task, ("edges", "sr", "inpaint"))
        check_fraction("edge_threshold", edge_threshold)
        check_count("factor", factor, 2)
        check_choice("mask", mask, ("center", "random"))
        if task == "sr" and self.size % factor:
            raise UserError(f"data.size={self.size} is not divisible by data.factor={factor}: pass a multiple of it")
        self.task, self.edge_threshold, self.factor, self.mask = task, edge_threshold, factor, mask

    @property
    def kind(self) -> str:
        return "paired"

    def _datasets(self) -> dict:
        target, y = self._digits()
        parts = [target, y]
        if self.task == "edges":
            parts.insert(0, translation.sobel_edges(target, self.num_levels, self.edge_threshold))
        elif self.task == "sr":
            parts.insert(0, translation.downsample(target, self.factor, self.num_levels))
        else:
            n, _, h, w = target.shape
            mask = (translation.center_mask(h, w).expand(n, 1, h, w) if self.mask == "center"
                    else translation.random_masks(n, h, w, self.seed))
            parts = [target * (1 - mask).to(torch.uint8), target, y, mask]
        return {k: TensorData(*(p[i] for p in parts), image_part=1) for k, i in self._split_indices(len(y)).items()}


class ThickDigitsDataModule(_DigitSource):
    """digits2thick, unpaired: domain A the digits, domain B thickened and inverted digits
    (translation.thicken_invert), made from disjoint halves of the examples (a seeded permutation),
    so no pair exists; each half split into train/val/test by the fractions. Batches
    `(a, b, label_a, label_b)`, B drawn independently of A (datasets.Unpaired)."""

    @property
    def kind(self) -> str:
        return "unpaired"

    def _datasets(self) -> dict:
        x, y = self._digits()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed + 1))
        self.halves = ia, ib = order[: len(y) // 2], order[len(y) // 2 :]  # the examples of A and of B
        a, ya, b, yb = x[ia], y[ia], translation.thicken_invert(x[ib], self.num_levels), y[ib]
        sa, sb = self._split_indices(len(ia)), self._split_indices(len(ib), self.seed + 2)
        return {k: Unpaired((a[sa[k]], ya[sa[k]]), (b[sb[k]], yb[sb[k]]), self.seed, augment=k == "train")
                for k in sa}

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.setup()
        return tuple(self.splits["train"].a[0].shape[1:])  # domain A's tensors


class BinarizedDataModule(GenDataModule):
    """Binary images (num_levels 2) for Bernoulli models (gen_runner/data/binarized.py).
    `binarization="dynamic"`: the grey images of `source` (digits, or MNIST's IDX files in `root`,
    file set `split`) split by the fractions, the train split binarised afresh every epoch, val and
    test once (seeded); "static": Larochelle & Murray's binarized_mnist_{train,valid,test}.amat in
    `root` (`download` fetches them, checksums checked), their own 50k/10k/10k splits (no labels)."""

    num_levels = 2

    def __init__(self, source: str = "digits", binarization: str = "dynamic", root: str | None = None,
                 split: str = "train", download: bool = False, **kwargs):
        super().__init__(**kwargs)
        if source not in ("digits", "mnist") or binarization not in ("dynamic", "static"):
            raise UserError(f"data.source={source!r}, data.binarization={binarization!r}: choose source digits or "
                            "mnist, binarization dynamic or static")
        if binarization == "static" and source != "mnist":
            raise UserError("data.binarization=static is the binarised MNIST of Larochelle & Murray: pass "
                            "data.source=mnist")
        self.binarization, self.root, self.download = binarization, Path(root or "."), download
        self.source = (DigitsDataModule(**kwargs) if source == "digits" else
                       MNISTDataModule(str(self.root), split, "mnist", download and binarization == "dynamic", **kwargs))

    def prepare_data(self) -> None:
        if self.binarization == "static":
            self._static()
        else:
            self.source.prepare_data()

    def _static(self) -> dict[str, torch.Tensor]:
        try:
            return load_static_mnist(self.root, self.download)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from e

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        if self.binarization == "static":
            self.splits = {k: TensorData(x) for k, x in self._static().items()}
            return
        parts = self.source._split()
        self.splits = {k: BinarizedData(x, y, self.source.num_levels, (self.seed, stream), dynamic=k == "train")
                       for stream, (k, (x, y)) in enumerate(parts.items())}



def crop_transform(load_size: int, crop_size: int, flip: bool, channels: int) -> Transform:
    """pix2pix/CycleGAN's augmentation from data.load_size, data.crop_size, data.flip, data.channels."""
    check_count("load_size", load_size)
    check_count("crop_size", crop_size)
    if crop_size > load_size:
        raise UserError(f"data.crop_size={crop_size} is larger than data.load_size={load_size}: crops are cut from "
                        "the resized image; pass a crop_size <= load_size")
    check_choice("channels", channels, (1, 3))
    return Transform(load_size, crop_size, channels, resize="square", random_crop=True, flip=flip)


class _Folders(GenDataModule):
    """Image-to-image data streamed from image files (data/folders.py's layouts), 256 grey levels:
    resized to `load_size` x `load_size`, a random `crop_size` crop and a random horizontal flip
    (`flip`) for training, the centre crop unflipped for val and test; each split's draws seeded
    per (seed, epoch, example). Labels are -1 (unknown)."""

    num_levels = 256
    find = None  # the layout: folders.find_pairs or folders.find_domains

    def __init__(self, path: str, load_size: int = 286, crop_size: int = 256, flip: bool = True, channels: int = 3,
                 **kwargs):
        super().__init__(**kwargs)
        self.path, self.transform = Path(path), crop_transform(load_size, crop_size, flip, channels)

    def _found(self) -> dict:
        try:
            return type(self).find(self.path)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"data.path={self.path}: {e}") from e

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.transform.channels, self.transform.crop, self.transform.crop


class PairedFolderDataModule(_Folders):
    """pix2pix's paired data, batches `(input, target, labels=-1)`: side-by-side A|B files or A/ and
    B/ folders (data/folders.py); `direction=AtoB` translates A into B, `BtoA` the reverse. One crop
    and one flip for both halves of a pair."""

    find = staticmethod(folders.find_pairs)

    def __init__(self, path: str, direction: str = "AtoB", **kwargs):
        super().__init__(path, **kwargs)
        check_choice("direction", direction, ("AtoB", "BtoA"))
        self.direction = direction

    @property
    def kind(self) -> str:
        return "paired"

    def _datasets(self) -> dict:
        found = self._carve(self._found())
        return {k: PairedFiles(v, self.transform, self.seed, augment=k == "train", swap=self.direction == "BtoA")
                for k, v in found.items()}


class UnpairedFolderDataModule(_Folders):
    """CycleGAN's unpaired data, batches `(a, b, label_a=-1, label_b=-1)`: trainA/, trainB/, testA/,
    testB/ (data/folders.py); B drawn independently of A (datasets.Unpaired), each with its own crop
    and flip."""

    find = staticmethod(folders.find_domains)

    @property
    def kind(self) -> str:
        return "unpaired"

    def _datasets(self) -> dict:
        found = self._found()
        if set(found) == {"train"}:
            a, b = found["train"]
            a, b = self._carve({"train": a}), self._carve({"train": b})
            found = {k: (a[k], b[k]) for k in a}
        else:
            self._carve({k: v[0] for k, v in found.items()})  # the batch-size check
        domain = lambda files: ImageFiles(files, None, self.transform, self.seed, augment=False)
        return {k: Unpaired(domain(a), domain(b), self.seed, augment=k == "train") for k, (a, b) in found.items()}


class CIFAR10DataModule(GenDataModule):
    """CIFAR-10 (Krizhevsky 2009) from the official python-pickle archive in `root` (data/cifar.py):
    32x32 RGB, 10 classes; `download=true` fetches it (md5 checked). `split` picks the file set
    (train: 50k, test: 10k); val and test are seeded fractions of it."""

    num_levels = 256

    def __init__(self, root: str, split: str = "train", download: bool = False, **kwargs):
        super().__init__(**kwargs)
        check_choice("split", split, ("train", "test"))
        self.root, self.split, self.download = Path(root), split, download

    def prepare_data(self) -> None:
        if self.download and not (self.root / cifar.FOLDER).is_dir():
            try:
                cifar.fetch(self.root)
            except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
                raise UserError(f"data.download=true: could not fetch {cifar.URL} ({e}); put {cifar.ARCHIVE} in "
                                f"{self.root} by hand") from e

    def _load(self):
        try:
            return cifar.load_cifar10(self.root, self.split)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"data.root={self.root}: {e}") from e
