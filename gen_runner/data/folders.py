"""The folder layouts of the image-to-image communities: which files make each split.

Paired (pix2pix; Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks", datasets as its code distributes them): under `root` or under each of its split folders
`train/`, `val/`, `test/`, either
- every image is one pair, A and B side by side (A the left half), as in facades/train/1.jpg, or
- two folders `A/` and `B/` holding files of the same names, a pair per name.

Unpaired (CycleGAN; Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", e.g. horse2zebra): `trainA/`, `trainB/`, `testA/`, `testB/` (and
optionally `valA/`, `valB/`).

Splits: a missing val split takes the test files and a missing test split the val files (the
papers' datasets ship train and test, or train and val); with neither, the caller carves them out
of train by its fractions (the result's key "train" alone).
"""
from __future__ import annotations

from pathlib import Path

from gen_runner.data.images import list_image_folder

__all__ = ["find_pairs", "find_domains"]

SPLITS = ("train", "val", "test")


def _pairs_in(folder: Path) -> list:
    """The pairs in one folder: (A file, B file) tuples from A/ and B/, or side-by-side files."""
    a, b = folder / "A", folder / "B"
    if not (a.is_dir() and b.is_dir()):
        return list_image_folder(folder)[0]
    files_a, _ = list_image_folder(a)
    missing = [f for f in files_a if not (b / f.relative_to(a)).is_file()]
    if missing:
        raise ValueError(f"{missing[0]} has no partner {b / missing[0].relative_to(a)} ({len(missing)} of "
                         f"{len(files_a)} files of {a} have none): A/ and B/ need files of the same names")
    return [(f, b / f.relative_to(a)) for f in files_a]


def _complete(found: dict[str, object]) -> dict[str, object]:
    """Fill a missing val or test split with the other; neither: train alone (carved by fractions)."""
    if "train" not in found:
        raise FileNotFoundError("no train split")
    if "val" in found or "test" in found:
        found.setdefault("val", found.get("test"))
        found.setdefault("test", found["val"])
    return found


def find_pairs(root: str | Path) -> dict[str, list]:
    """Each split's pairs under `root` (see the module docstring): side-by-side files or (A, B) tuples."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    splits = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if not splits:
        return {"train": _pairs_in(root)}
    if "train" not in splits:
        raise FileNotFoundError(f"{root} has {', '.join(f'{s}/' for s in splits)} but no train/ folder")
    return _complete({s: _pairs_in(folder) for s, folder in splits.items()})


def find_domains(root: str | Path) -> dict[str, tuple[list[Path], list[Path]]]:
    """Each split's (A files, B files) from CycleGAN's trainA/ trainB/ testA/ testB/ (valA/ valB/)."""
    root = Path(root)
    if not (root / "trainA").is_dir() or not (root / "trainB").is_dir():
        raise FileNotFoundError(f"{root} needs trainA/ and trainB/ folders (and testA/, testB/): CycleGAN's layout")
    found = {}
    for split in SPLITS:
        a, b = root / f"{split}A", root / f"{split}B"
        if a.is_dir() != b.is_dir():
            raise FileNotFoundError(f"{root} has {(a if a.is_dir() else b).name}/ but not {(b if a.is_dir() else a).name}/")
        if a.is_dir():
            found[split] = (list_image_folder(a)[0], list_image_folder(b)[0])
    return _complete(found)
