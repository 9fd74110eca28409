"""Image sources: IDX/MNIST, downloads, digits, tensor files, image folders, ranges and grids."""
import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gen_runner.data import images as im

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def idx_bytes(a: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, TYPE_CODES[a.dtype.type], a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, a: np.ndarray, compress: bool | None = None) -> Path:
    data = idx_bytes(a)
    if path.suffix == ".gz" if compress is None else compress:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_mnist(root: Path, prefix: str, n: int, gz: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", x)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", y)
    return x, y


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", list(TYPE_CODES), ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", ["a.idx.gz", "a.idx"])
def test_read_idx_round_trip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    out = im.read_idx(write_idx(tmp_path / name, a))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)
    out[0, 0, 0] = 1  # writable


def test_read_idx_detects_gzip_by_magic(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(im.read_idx(write_idx(tmp_path / "labels-idx1-ubyte", a, compress=True)), a)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda b: b[:-5], "size mismatch"),
        (lambda b: b + b"\x00", "size mismatch"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b"\x01\x02" + b[2:], "bad magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "bad magic"),
        (lambda b: b"", "bad magic"),
    ],
)
def test_read_idx_corrupt_raw(tmp_path, corrupt, match):
    path = tmp_path / "x.idx"
    path.write_bytes(corrupt(idx_bytes(np.zeros((4, 5, 5), np.uint8))))
    with pytest.raises(ValueError, match=match):
        im.read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))[:-40])
    with pytest.raises(ValueError, match="corrupt gzip"):
        im.read_idx(path)


# ----------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("variant", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_both_splits(tmp_path, variant, gz):
    x_train, y_train = write_mnist(tmp_path, "train", 12, gz=gz, seed=0)
    x_test, y_test = write_mnist(tmp_path, "t10k", 7, gz=gz, seed=1)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        images, labels = im.load_mnist(tmp_path, split=split, variant=variant)
        assert images.shape == (len(x), 1, 28, 28) and images.dtype == torch.uint8
        assert labels.dtype == torch.int64
        np.testing.assert_array_equal(images[:, 0].numpy(), x)
        np.testing.assert_array_equal(labels.numpy(), y)


def test_load_mnist_test_split_alone(tmp_path):
    write_mnist(tmp_path, "t10k", 5)  # like ../shared/data/mnist: only the test files
    assert im.load_mnist(tmp_path, split="test")[0].shape[0] == 5
    with pytest.raises(FileNotFoundError):
        im.load_mnist(tmp_path, split="train")


def test_load_mnist_missing_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        im.load_mnist(tmp_path / "nowhere", split="train", variant="fashion_mnist")
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "nowhere" in message and "data.download=true" in message


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        im.load_mnist(tmp_path, split="val")
    with pytest.raises(ValueError, match="variant"):
        im.load_mnist(tmp_path, variant="kmnist")


def test_load_mnist_inconsistent_files(tmp_path):
    write_mnist(tmp_path, "t10k", 5)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="expected uint8 images"):
        im.load_mnist(tmp_path, split="test")


def test_mnist_resources_are_complete():
    for variant, res in im.MNIST_RESOURCES.items():
        assert res["mirrors"] and all(m.endswith("/") for m in res["mirrors"]), variant
        assert set(res["md5"]) == {
            f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")
        }
        assert all(len(h) == 32 and int(h, 16) >= 0 for h in res["md5"].values())


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_file_md5(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"gen-runner" * 1000)
    dest = tmp_path / "out" / "file.bin"
    assert im.download_file(src.as_uri(), dest, md5(src.read_bytes())) == dest
    assert dest.read_bytes() == src.read_bytes()

    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(ValueError, match="md5 mismatch"):
        im.download_file(src.as_uri(), bad, "0" * 32)
    assert not bad.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["file.bin"]  # no temp files left


def test_load_mnist_download_falls_back_to_second_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_mnist(mirror, "t10k", 6)
    names = [p.name for p in mirror.iterdir()]
    resources = {
        "mirrors": [(tmp_path / "missing").as_uri() + "/", mirror.as_uri() + "/"],
        "md5": {n: md5((mirror / n).read_bytes()) for n in names},
    }
    monkeypatch.setitem(im.MNIST_RESOURCES, "mnist", resources)
    images, labels = im.load_mnist(tmp_path / "data", split="test", download=True)
    assert images.shape == (6, 1, 28, 28) and labels.shape == (6,)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(names)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="real MNIST test set not present")
def test_shared_mnist_test_set():
    images, labels = im.load_mnist(SHARED_MNIST, split="test")
    assert images.shape == (10000, 1, 28, 28)
    assert labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.float().mean().item() == pytest.approx(33.79, abs=0.01)


def test_load_digits():
    images, labels = im.load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.uint8
    assert images.min() == 0 and images.max() == 16  # 17 grey levels
    assert labels.dtype == torch.int64 and labels.unique().tolist() == list(range(10))


# ----------------------------------------------------------------------------- tensor files


def test_load_tensor_file_npy_points(tmp_path):
    a = np.random.default_rng(0).normal(size=(10, 2))
    np.save(tmp_path / "p.npy", a)
    x, y = im.load_tensor_file(tmp_path / "p.npy")
    assert x.dtype == torch.float32 and x.shape == (10, 2) and y is None
    np.testing.assert_allclose(x.numpy(), a, rtol=1e-6)


def test_load_tensor_file_npz_images_with_labels(tmp_path):
    a = np.arange(5 * 6 * 7, dtype=np.uint8).reshape(5, 6, 7)
    np.savez(tmp_path / "d.npz", images=a, labels=np.arange(5))
    x, y = im.load_tensor_file(tmp_path / "d.npz")
    assert x.dtype == torch.uint8 and x.shape == (5, 1, 6, 7)
    assert y.dtype == torch.int64 and y.tolist() == list(range(5))


def test_load_tensor_file_npz_first_array(tmp_path):
    np.savez(tmp_path / "d.npz", points=np.ones((4, 3)))
    x, y = im.load_tensor_file(tmp_path / "d.npz")
    assert x.shape == (4, 3) and y is None


@pytest.mark.parametrize(
    "obj",
    [
        torch.rand(6, 3, 4, 4),
        {"x": torch.rand(6, 3, 4, 4), "y": torch.arange(6)},
        {"data": torch.rand(6, 3, 4, 4), "labels": torch.arange(6, dtype=torch.int32)},
        (torch.rand(6, 3, 4, 4), torch.arange(6)),
    ],
    ids=["tensor", "dict-x-y", "dict-data-labels", "tuple"],
)
def test_load_tensor_file_pt(tmp_path, obj):
    torch.save(obj, tmp_path / "d.pt")
    x, y = im.load_tensor_file(tmp_path / "d.pt")
    assert x.shape == (6, 3, 4, 4) and x.dtype == torch.float32
    assert y is None if isinstance(obj, torch.Tensor) else y.tolist() == list(range(6))


@pytest.mark.parametrize(
    "data, labels",
    [
        (np.zeros(5), None),  # 1-D
        (np.zeros((2, 3, 4, 5, 6)), None),  # 5-D
        (np.zeros((0, 2)), None),  # empty
        (np.zeros((4, 28, 28, 3)), None),  # channels-last
        (np.array([["a", "b"]]), None),  # non-numeric
        (np.zeros((4, 2)), np.arange(3)),  # label length
        (np.zeros((4, 2)), np.zeros(4)),  # float labels
        (np.full((4, 2), np.nan), None),  # NaN
    ],
)
def test_load_tensor_file_bad_shapes(tmp_path, data, labels):
    path = tmp_path / "bad.npz"
    np.savez(path, x=data, **({} if labels is None else {"y": labels}))
    with pytest.raises(ValueError) as info:
        im.load_tensor_file(path)
    assert "\n" not in str(info.value)


def test_load_tensor_file_unreadable(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "a.csv").write_text("1,2\n")
    for name in ("a.pt", "a.csv"):
        with pytest.raises(ValueError) as info:
            im.load_tensor_file(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        im.load_tensor_file(tmp_path / "missing.npy")


# ----------------------------------------------------------------------------- image folders


def save_png(path: Path, size: tuple[int, int], color, mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_load_image_folder_with_classes(tmp_path):
    save_png(tmp_path / "dog" / "b.png", (40, 20), (0, 0, 255))
    save_png(tmp_path / "dog" / "a.jpg", (20, 40), (0, 255, 0))
    save_png(tmp_path / "cat" / "x.bmp", (16, 16), (255, 0, 0))
    save_png(tmp_path / "cat" / "deep" / "y.png", (8, 8), 128, mode="L")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    images, labels = im.load_image_folder(tmp_path, size=16)
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    # sorted order: cat/deep/y.png, cat/x.bmp, dog/a.jpg, dog/b.png; classes cat=0, dog=1
    assert labels.tolist() == [0, 0, 1, 1]
    assert images[1, :, 8, 8].tolist() == [255, 0, 0]
    assert images[3, :, 8, 8].tolist() == [0, 0, 255]
    assert images[0, :, 8, 8].tolist() == [128, 128, 128]


def test_load_image_folder_flat_grey_and_centre_crop(tmp_path):
    # 30x10 image whose middle 10 columns are white: the centre crop keeps only those.
    a = np.zeros((10, 30), np.uint8)
    a[:, 10:20] = 255
    Image.fromarray(a).save(tmp_path / "wide.png")
    save_png(tmp_path / "small.png", (5, 5), (10, 20, 30))
    images, labels = im.load_image_folder(tmp_path, size=10, channels=1)
    assert labels is None and images.shape == (2, 1, 10, 10)
    assert (images[0] == 18).all()  # small.png (10, 20, 30) upscaled: flat grey, ITU-R 601 luma 18
    assert (images[1] == 255).all()


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        im.load_image_folder(tmp_path / "missing", size=8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        im.load_image_folder(tmp_path / "empty", size=8)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read image"):
        im.load_image_folder(tmp_path / "broken", size=8)


# ----------------------------------------------------------------------------- ranges and grids


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_gan_range_round_trip(levels):
    x = torch.arange(levels)
    y = im.to_gan_range(x, levels)
    assert y.min() == -1 and y.max() == 1
    torch.testing.assert_close(im.from_gan_range(y, levels), x.float())


def test_dequantize():
    x = torch.randint(0, 17, (1000,), generator=torch.Generator().manual_seed(0))
    d = im.dequantize(x, 17, generator=torch.Generator().manual_seed(1))
    assert d.min() >= 0 and d.max() < 1
    assert torch.equal(torch.floor(d * 17).long(), x)
    assert torch.equal(d, im.dequantize(x, 17, generator=torch.Generator().manual_seed(1)))


def test_make_grid_layout():
    images = torch.stack([torch.full((1, 3, 4), i / 10) for i in range(5)])
    grid = im.make_grid(images, nrow=3, padding=2, pad_value=1.0, scale=1)
    assert grid.shape == (1, 2 * (3 + 2) + 2, 3 * (4 + 2) + 2)
    assert grid[0, 0].eq(1).all() and grid[0, :, 0].eq(1).all()
    assert grid[0, 2:5, 2:6].eq(0).all()  # image 0, top left
    assert grid[0, 2:5, 8:12].eq(0.1).all()  # image 1
    assert grid[0, 7:10, 2:6].eq(0.3).all()  # image 3, second row
    assert grid[0, 7:10, 14:18].eq(1.0).all()  # empty slot keeps the padding value
    assert im.make_grid(images, scale=1).shape == (1, 12, 20)  # default nrow = ceil(sqrt(5)) = 3
    # Small images are enlarged by pixel repetition (to >= 32 pixels) unless told otherwise.
    assert torch.equal(im.make_grid(images), grid.repeat_interleave(8, 1).repeat_interleave(8, 2))
    with pytest.raises(ValueError):
        im.make_grid(torch.zeros(3, 4, 4))


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_image_grid(tmp_path, channels, mode):
    images = torch.rand(6, channels, 5, 5, generator=torch.Generator().manual_seed(0))
    path = im.save_image_grid(images, tmp_path / "sub" / "grid.png", nrow=2)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == mode and png.size == (6 * (2 * 7 + 2), 6 * (3 * 7 + 2))
        pixels = np.asarray(png)
    expected = (im.make_grid(images, nrow=2) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(pixels, expected[..., 0] if channels == 1 else expected)
