"""Multi-view wrapping and a resumable, DDP-aware epoch sampler.

Every batch is a pure function of (seed, epoch, position): the sampler shuffles with a generator
seeded by (seed, epoch) and yields ``(epoch, index)`` pairs, and the dataset seeds each sample's
augmentation with (seed, epoch, index). So a run resumed mid-epoch (the sampler skips the batches
already done) sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler, Subset, default_collate, get_worker_info


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across processes and runs."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & 0xFFFFFFFFFFFFFFFF
        x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return x & 0x7FFFFFFFFFFFFFFF


class MultiViewDataset(Dataset):
    """Wraps a dataset of (image, label); item ``(epoch, i)`` -> (i, [view_1..view_V], label)."""

    def __init__(
        self, base: Dataset, transform: Callable, num_views: int = 2, seed: int = 0
    ) -> None:
        if num_views < 1:
            raise ValueError(f"num_views={num_views} must be >= 1")
        self.base, self.transform, self.num_views, self.seed = base, transform, num_views, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[int, list[torch.Tensor], int]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        image, label = self.base[i]
        seed = _mix(self.seed, epoch, i)
        if get_worker_info() is not None:  # a worker owns its RNG
            torch.manual_seed(seed)
            views = [self.transform(image) for _ in range(self.num_views)]
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                views = [self.transform(image) for _ in range(self.num_views)]
        return i, views, label


class EpochSampler(Sampler):
    """Shuffled, drop-last, per-rank sampler yielding (epoch, index); ``skip_batches`` resumes.

    Each epoch: a permutation seeded by (seed, epoch), cut to a multiple of world_size x
    batch_size, rank r takes positions r, r + world, ... (so every rank has the same batch count).
    """

    def __init__(
        self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.size, self.batch_size, self.seed, self.rank, self.world = (
            size,
            batch_size,
            seed,
            rank,
            world_size,
        )
        self.epoch = 0
        self.skip: tuple[int, int] | None = None  # (epoch, batches already done in it)
        if self.num_batches == 0:
            raise ValueError(
                f"data.batch_size={batch_size} x {world_size} process(es) is larger than the "
                f"training set ({size} samples): lower the batch size"
            )

    @property
    def num_batches(self) -> int:
        return self.size // (self.batch_size * self.world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Start in ``epoch`` after its first ``batches_done`` batches. The epoch is set here as
        well as by ``set_epoch``: a loader with workers draws its first indices from the sampler
        when its iterator is built, which Lightning does before it calls ``set_epoch``."""
        self.epoch = epoch
        self.skip = (epoch, batches_done) if batches_done > 0 else None

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch, 7))
        order = torch.randperm(self.size, generator=g)[
            : self.num_batches * self.batch_size * self.world
        ]
        mine = order[self.rank :: self.world].tolist()
        epoch = self.epoch
        start = 0
        if self.skip is not None and self.skip[0] == epoch:
            start = self.skip[1] * self.batch_size
        return iter([(epoch, i) for i in mine[start:]])


class PreBatched(tuple):
    """A batch already collated by ``Dataset.__getitems__`` (see :meth:`IndexedImages.collate`)."""


class IndexedImages(Dataset):
    """Item ``(epoch, i)`` -> (i, image as a uint8 tensor, label), for batch augmentation.

    When the images live in one tensor (``get_batch``, e.g. Fashion-MNIST and digits, also
    through ``Subset``), the DataLoader fetches a whole batch with one gather through
    ``__getitems__`` instead of one ``__getitem__`` per image plus stacking (about 5 ms per batch
    of 256 here); the batch is identical. Use :meth:`collate` as the loader's ``collate_fn``.
    """

    def __init__(self, base: Dataset) -> None:
        from torchvision.transforms import v2

        self.base, self.to_image = base, v2.ToImage()

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[int, torch.Tensor, int]:
        i = key[1] if isinstance(key, tuple) else key
        image, label = self.base[i]
        if not isinstance(image, torch.Tensor):  # PIL images; tensors pass through untouched
            image = self.to_image(image).as_subclass(torch.Tensor)
        return i, image, label

    def __getitems__(self, keys: list[tuple[int, int] | int]) -> list | PreBatched:
        order = [k[1] if isinstance(k, tuple) else k for k in keys]
        base, rows = self.base, order
        while isinstance(base, Subset):
            rows = [base.indices[r] for r in rows]
            base = base.dataset
        if not hasattr(base, "get_batch"):
            return [self[k] for k in keys]
        images, labels = base.get_batch(torch.as_tensor(rows, dtype=torch.long))
        return PreBatched((torch.as_tensor(order, dtype=torch.long), images, labels))

    @staticmethod
    def collate(data: list | PreBatched) -> Any:
        """``collate_fn`` for this dataset: pre-batched data as is, else ``default_collate``."""
        if isinstance(data, PreBatched):
            return tuple(data)
        return default_collate(data)
