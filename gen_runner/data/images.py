"""Image and array sources in plain torch/numpy/PIL, plus pixel-range helpers and PNG grids.

Every loader returns `(data, labels)`: images as uint8 [N, C, H, W] (tensor files may also give
float data or N x D points) and labels as int64 [N] or None.

References:
    LeCun et al. 1998, MNIST, and its IDX file format (yann.lecun.com/exdb/mnist).
    Xiao et al. 2017, "Fashion-MNIST", arXiv:1708.07747.
    Theis et al. 2016, "A note on the evaluation of generative models", arXiv:1511.01844 (dequantization).
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = [
    "MNIST_RESOURCES",
    "read_idx",
    "download_file",
    "load_mnist",
    "load_digits",
    "load_tensor_file",
    "list_image_folder",
    "load_image_folder",
    "read_image",
    "fit_size",
    "to_gan_range",
    "from_gan_range",
    "dequantize",
    "make_grid",
    "save_image_grid",
]

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Mirrors (tried in order) and md5 of the gzip files, as distributed.
MNIST_RESOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion_mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


# ----------------------------------------------------------------------------- IDX / MNIST


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed if named *.gz or if it starts with the gzip magic).

    Header: two zero bytes, a type code (0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int,
    0x0D float, 0x0E double), the number of dimensions, then each size as a big-endian uint32.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e}); delete the file and fetch it again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, expected at least {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX size mismatch: {len(raw)} bytes for shape {shape}, expected {expected}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def download_file(url: str, dest: str | os.PathLike, md5: str | None = None) -> Path:
    """Download `url` to `dest` via a temporary file in the same folder, check its md5, then rename.

    On a checksum mismatch the temporary file is deleted and ValueError is raised.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(f"md5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _find(root: Path, name: str) -> Path | None:
    """The gzip file `name` in `root`, or its uncompressed twin; None when neither exists."""
    for candidate in (root / name, root / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(
    root: str | os.PathLike, split: str = "train", variant: str = "mnist", download: bool = False
) -> tuple[Tensor, Tensor]:
    """MNIST (LeCun et al. 1998) or Fashion-MNIST (Xiao et al. 2017) from the IDX files in `root`.

    Reads `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` (or the uncompressed names).
    Only the requested split is needed, so a folder holding just the t10k files can serve
    `split="test"`. Returns uint8 images [N, 1, 28, 28] and int64 labels [N].
    """
    if variant not in MNIST_RESOURCES:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(MNIST_RESOURCES)}")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    root, prefix = Path(root), "train" if split == "train" else "t10k"
    names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    resources = MNIST_RESOURCES[variant]

    paths = [_find(root, name) for name in names]
    missing = [name for name, p in zip(names, paths) if p is None]
    if missing and download:
        for name in missing:
            _download_from_mirrors(resources["mirrors"], name, root / name, resources["md5"][name])
        paths = [_find(root, name) for name in names]
    elif missing:
        raise FileNotFoundError(
            f"{variant} {split} files not found: put {' and '.join(missing)} in {root.resolve()}"
            " (or pass data.download=true)"
        )

    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{root}: expected uint8 images N x H x W and N labels,"
            f" got {images.dtype} {images.shape} and {labels.shape}"
        )
    return torch.from_numpy(images.astype(np.uint8))[:, None], torch.from_numpy(labels.astype(np.int64))


def _download_from_mirrors(mirrors: list[str], name: str, dest: Path, md5: str) -> None:
    errors = []
    for mirror in mirrors:
        try:
            download_file(mirror + name, dest, md5)
            return
        except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
            errors.append(f"{mirror}: {e}")
    raise RuntimeError(f"could not download {name} ({'; '.join(errors)}); put it in {dest.parent} by hand")


def load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits: uint8 [1797, 1, 8, 8] with values 0..16 (17 levels), int64 labels."""
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    images = torch.from_numpy(digits.images.astype(np.uint8))[:, None]
    return images, torch.from_numpy(digits.target.astype(np.int64))


# ----------------------------------------------------------------------------- files and folders

_SHAPES_HINT = "expected N x D points, N x H x W or N x C x H x W images, and optional N integer labels"


def load_tensor_file(path: str | os.PathLike) -> tuple[Tensor, Tensor | None]:
    """Data from a .npy, .npz or .pt file: points [N, D] or images [N, C, H, W] ([N, H, W] gets C = 1).

    .npz and dict-valued .pt files: data under `x`, `data` or `images` (else the first array),
    labels under `y` or `labels`. A .pt file may also hold a bare tensor or an (x, y) pair.
    uint8 data stays uint8; other numeric data becomes float32.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            x, y = np.load(path, allow_pickle=False), None
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                x, y = _pick(dict(archive), path)
        elif suffix == ".pt":
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                x, y = _pick(obj, path)
            elif isinstance(obj, (tuple, list)) and len(obj) == 2:
                x, y = obj
            else:
                x, y = obj, None
        else:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz or .pt")
    except (OSError, EOFError, RuntimeError, zlib.error, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: cannot read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return _check_data(x, path), _check_labels(y, x, path)


def _pick(mapping: dict, path: Path) -> tuple[object, object]:
    if not mapping:
        raise ValueError(f"{path}: no arrays in file; {_SHAPES_HINT}")
    key = next((k for k in ("x", "data", "images") if k in mapping), next(iter(mapping)))
    label_key = next((k for k in ("y", "labels") if k in mapping and k != key), None)
    return mapping[key], mapping[label_key] if label_key else None


def _as_tensor(a: object, path: Path, what: str) -> Tensor:
    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{path}: {what} has non-numeric dtype {a.dtype}; {_SHAPES_HINT}")
        return torch.from_numpy(np.ascontiguousarray(a))
    if isinstance(a, Tensor):
        return a
    raise ValueError(f"{path}: {what} is a {type(a).__name__}, not an array; {_SHAPES_HINT}")


def _check_data(a: object, path: Path) -> Tensor:
    x = _as_tensor(a, path, "data")
    if x.dtype.is_complex or x.dtype == torch.bool or x.ndim not in (2, 3, 4) or x.numel() == 0:
        raise ValueError(f"{path}: got data of shape {tuple(x.shape)} and dtype {x.dtype}; {_SHAPES_HINT}")
    if x.ndim == 4 and x.shape[1] > 4 and x.shape[-1] <= 4:
        raise ValueError(f"{path}: shape {tuple(x.shape)} looks channels-last; {_SHAPES_HINT} (channels first)")
    x = x if x.dtype == torch.uint8 else x.float()
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{path}: data contains NaN or inf")
    return x[:, None] if x.ndim == 3 else x


def _check_labels(a: object, x: object, path: Path) -> Tensor | None:
    if a is None:
        return None
    y = _as_tensor(a, path, "labels")
    n = len(x)
    if y.ndim != 1 or len(y) != n or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        shape = tuple(y.shape)
        raise ValueError(f"{path}: got labels of shape {shape} and dtype {y.dtype} for {n} items; {_SHAPES_HINT}")
    return y.long()


def list_image_folder(path: str | os.PathLike) -> tuple[list[Path], Tensor | None]:
    """Every png/jpg/jpeg/bmp/gif/webp file below `path`, sorted, and its label: when all images sit
    in first-level subfolders, labels index the sorted subfolder names; otherwise labels are None."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) found below {root}")
    paths = [root / f for f in files]
    if any(len(f.parts) == 1 for f in files):
        return paths, None
    index = {c: i for i, c in enumerate(sorted({f.parts[0] for f in files}))}
    return paths, torch.tensor([index[f.parts[0]] for f in files], dtype=torch.int64)


def load_image_folder(path: str | os.PathLike, size: int, channels: int = 3) -> tuple[Tensor, Tensor | None]:
    """Every image `list_image_folder` finds, as uint8 [N, channels, size, size] (`read_image`), and its labels."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    files, labels = list_image_folder(path)
    return torch.stack([read_image(f, size, channels) for f in files]), labels


def open_image(path: str | os.PathLike, channels: int) -> Image.Image:
    """The decoded image, converted to L (channels=1) or RGB (channels=3); ValueError if unreadable."""
    try:
        with Image.open(path) as im:
            return im.convert("L" if channels == 1 else "RGB")
    except OSError as e:  # includes PIL.UnidentifiedImageError
        raise ValueError(f"cannot read image {path}: {e}") from None


def to_tensor(im: Image.Image) -> Tensor:
    """A PIL image -> uint8 [C, H, W]."""
    a = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(a.reshape(*a.shape[:2], -1).copy()).permute(2, 0, 1)


def resize_shorter(im: Image.Image, size: int) -> Image.Image:
    """Shorter side resized to `size` (bicubic), the aspect ratio kept."""
    w, h = im.size
    scale = size / min(w, h)
    return im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)


def center_box(w: int, h: int, size: int) -> tuple[int, int, int, int]:
    left, top = (w - size) // 2, (h - size) // 2
    return left, top, left + size, top + size


def read_image(path: str | os.PathLike, size: int, channels: int = 3) -> Tensor:
    """One image as uint8 [channels, size, size]: its shorter side resized to `size` (bicubic), centre-cropped."""
    im = resize_shorter(open_image(path, channels), size)
    return to_tensor(im.crop(center_box(*im.size, size)))


def fit_size(x: Tensor, size: int, fit: str, levels: int) -> Tensor:
    """uint8 images [N, C, h, w] brought to `size` x `size`. fit="pad": centred in a frame of zeros
    (background; the size must be at least the images'); fit="resize": bilinear (antialiased when
    shrinking), rounded back to the `levels` grey levels."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if fit == "pad":
        if size < max(h, w):
            raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}: pass a size >= {max(h, w)} or resize")
        top, left = (size - h) // 2, (size - w) // 2
        return torch.nn.functional.pad(x, (left, size - w - left, top, size - h - top))
    if fit == "resize":
        y = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=size < max(h, w))
        return y.round().clamp(0, levels - 1).to(torch.uint8)
    raise ValueError(f"unknown fit {fit!r}: choose pad or resize")


# ----------------------------------------------------------------------------- pixel ranges


def to_gan_range(x: Tensor, levels: int) -> Tensor:
    """Map discrete values 0..levels-1 linearly onto [-1, 1] (what a tanh generator outputs)."""
    return x.float() / (levels - 1) * 2 - 1


def from_gan_range(x: Tensor, levels: int) -> Tensor:
    """Inverse of `to_gan_range`: [-1, 1] back to float values in [0, levels-1]."""
    return (x.float() + 1) / 2 * (levels - 1)


def dequantize(x: Tensor, levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantization (Theis et al. 2016): (x + u) / levels with u ~ U[0, 1), in [0, 1)."""
    noise = torch.rand(x.shape, generator=generator, device=x.device)
    return (x.float() + noise) / levels


# ----------------------------------------------------------------------------- grids


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0,
              scale: int | None = None) -> Tensor:
    """Tile images [N, C, H, W] into one image [C, H', W'], `nrow` images per row (default ceil(sqrt N)).

    Every tile is surrounded by `padding` pixels of `pad_value`, as torchvision's make_grid. The
    grid is enlarged `scale` times by pixel repetition (default: small images to at least 32
    pixels), so 8x8 digits stay legible in TensorBoard and in PNGs.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty batch N x C x H x W, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    ncol = nrow or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncol)
    grid = images.new_full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i, image in enumerate(images):
        top, left = padding + (i // ncol) * (h + padding), padding + (i % ncol) * (w + padding)
        grid[:, top : top + h, left : left + w] = image
    scale = scale or max(1, 32 // max(h, w))
    return grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


def save_image_grid(images: Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """Save images [N, C, H, W] in [0, 1] as one PNG grid; 1 channel gives a greyscale PNG, 3 give RGB."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images N x 1 x H x W or N x 3 x H x W, got shape {tuple(images.shape)}")
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding)
    pixels = grid.nan_to_num(0.0).mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path, format="PNG")
    return path
