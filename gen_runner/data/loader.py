"""A data loader that resumes mid-epoch and shards itself across ranks.

Epoch e's order is a permutation seeded by (seed, e), so it does not depend on the global RNG.
The training loop reports how many batches of the current pass it has finished (`consumed`;
Lightning prefetches, so a count of batches served would run ahead), and every new iterator
continues from there, starting the next epoch once a pass is complete. The loader counts epochs
itself, so the batches it yields are a function of the batches consumed alone, whatever order
Lightning calls `iter()` and its epoch hooks in around a restart. Lightning stores `state_dict()`
in the checkpoint and hands it back on resume, so a resumed run sees exactly the batches an
uninterrupted run would have seen.
In-memory tensors are fetched a whole batch at a time (`__getitems__`), not item by item.

Random augmentation (crops, flips, CycleGAN's independent B draws) is a function of (seed, epoch,
example index) alone (`example_rng`): a dataset that declares `tagged = True` receives `(epoch, i)`
pairs from the sampler instead of bare indices, in the main process or in any worker, so a resumed
run sees the same augmented images as an uninterrupted one, whatever `num_workers`.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["TensorData", "EpochSampler", "ResumableLoader", "example_rng"]


def example_rng(seed: int, epoch: int, index: int, *stream: int) -> np.random.Generator:
    """The random draws of one example in one epoch (a SeedSequence of the integers: no collisions)."""
    return np.random.default_rng([seed, epoch, index, *stream])


class TensorData(Dataset):
    """Tensors indexed together along their first dimension, fetched batch-wise. `image_part`:
    which tensor holds the images evaluation compares against (a paired set's targets)."""

    def __init__(self, *tensors: torch.Tensor, image_part: int = 0):
        self.tensors, self.image_part = tensors, image_part

    def images(self, n: int) -> torch.Tensor:
        """The first n images (uint8), as stored."""
        return self.tensors[self.image_part][:n]

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        return tuple(t[idx] for t in self.tensors)


def _batched(batch):
    """Collate for TensorData: `__getitems__` already returns the batch."""
    return batch


class EpochSampler(Sampler[int]):
    """Seeded per-epoch order (a permutation, or the identity), sharded across `num_replicas`,
    starting at position `start`; `(epoch, index)` pairs when `tagged` (epoch None in an ordered
    pass). (No `set_epoch`: the loader, not Lightning, decides the epoch.)"""

    def __init__(self, n: int, seed: int, shuffle: bool = True, num_replicas: int = 1, rank: int = 0,
                 tagged: bool = False):
        self.n, self.seed, self.shuffle, self.tagged = n, seed, shuffle, tagged
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return self.n // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        # Every rank gets an equal share; the few left over are dropped this epoch.
        order = order[: len(self) * self.num_replicas][self.rank :: self.num_replicas]
        order = order[self.start :].tolist()
        epoch = self.epoch if self.shuffle else None  # an ordered pass (evaluation) is not augmented
        return iter([(epoch, i) for i in order] if self.tagged else order)


class ResumableLoader(DataLoader):
    """A DataLoader over an EpochSampler whose position survives a checkpoint."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, shuffle: bool = True,
                 drop_last: bool = True, num_replicas: int = 1, rank: int = 0, num_workers: int = 0,
                 pin_memory: bool = False):
        sampler = EpochSampler(len(dataset), seed, shuffle, num_replicas, rank, getattr(dataset, "tagged", False))
        collate = _batched if hasattr(dataset, "__getitems__") else None
        # Its own generator: creating an iterator would otherwise draw from the global RNG.
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                         num_workers=num_workers, collate_fn=collate, pin_memory=pin_memory,
                         persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
        self.consumed = 0  # batches of the current pass the training loop has finished
        self.epoch = 0  # the current pass

    def __iter__(self):
        if self.consumed >= len(self):  # the last pass was finished: start the next epoch
            self.epoch, self.consumed = self.epoch + 1, 0
        self.sampler.epoch, self.sampler.start = self.epoch, self.consumed * self.batch_size
        return super().__iter__()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.consumed = state["epoch"], state["batches"]
