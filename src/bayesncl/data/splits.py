"""Splits of a dataset for evaluation: the raw train/validation splits of a run's data section,
their deterministic transform, fixed subsets, and a dataset wrapper that applies a transform.

Pure torch: no Lightning, no fit parser. ``bayesncl evaluate`` rebuilds its data from the
``data`` section of the run config saved in the checkpoint with :func:`eval_splits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from bayesncl.data.augment import eval_transform
from bayesncl.data.datasets import DatasetSpec, get_dataset_spec


class Transformed(Dataset):
    """``base``'s (image, label) items with ``transform`` applied to the image."""

    def __init__(self, base: Dataset, transform: Callable[[Any], Any]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        image, label = self.base[i]
        return self.transform(image), label


def subset(ds: Dataset, n: int | None, seed: int = 1) -> Dataset:
    """The first ``n`` items of a fixed permutation (so the classes are mixed), or ``ds`` itself
    when ``n`` is None or at least its length. ``n`` < 1 is an error."""
    if n is None or n >= len(ds):  # type: ignore[arg-type]
        return ds
    if n < 1:
        raise ValueError(f"a subset of {n} items: use n >= 1 (or None: the whole split)")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]  # type: ignore[arg-type]
    return Subset(ds, order.tolist())


@dataclass(frozen=True)
class EvalSplits:
    """A dataset as evaluation sees it: raw splits on demand and the evaluation transform."""

    spec: DatasetSpec
    data_dir: Path
    image_size: int
    download: bool = False

    def load(self, train: bool, limit: int | None = None) -> Dataset:
        """The raw split (untransformed (image, label) items), at most ``limit`` of them."""
        return subset(self.spec.load(train, self.data_dir, self.download), limit)

    def transform(self) -> Callable[[Any], Any]:
        """The deterministic evaluation transform (resize + centre crop where the dataset has
        one, then normalisation with the dataset's statistics)."""
        s = self.spec
        resize = s.eval_resize_for(self.image_size)
        return eval_transform(self.image_size, s.mean, s.std, resize)

    def transformed(self, train: bool, limit: int | None = None) -> Dataset:
        """:meth:`load` with :meth:`transform` applied: items (image tensor, label)."""
        return Transformed(self.load(train, limit), self.transform())


#: keys of a run config's ``data`` section that evaluation reads, with their defaults
_EVAL_KEYS: dict[str, Any] = {
    "dataset": "digits",
    "data_dir": "data",
    "image_size": None,
    "num_classes": None,
    "download": False,
    "skip_corrupt": False,
}


def eval_splits(data: Mapping[str, Any] | None, data_dir: str | Path | None = None) -> EvalSplits:
    """The evaluation splits of a run config's ``data`` section (``run_config["data"]``).

    Only the keys that decide which images are seen and how they are normalised are read
    (dataset, data_dir, image_size, num_classes, download, skip_corrupt); training subsets do
    not apply (evaluation uses whole splits). ``data_dir`` overrides the saved location (the
    data moved since training)."""
    cfg = {**_EVAL_KEYS, **{k: v for k, v in (data or {}).items() if k in _EVAL_KEYS}}
    spec = get_dataset_spec(cfg["dataset"]).configured(cfg["num_classes"], cfg["skip_corrupt"])
    size = cfg["image_size"]
    if size is not None and size < 1:
        raise ValueError(f"data.image_size={size} must be >= 1 (or unset: native size)")
    root = Path(data_dir if data_dir is not None else cfg["data_dir"])
    if not (size or spec.image_size):  # image folders of the images' own size, as in training
        size, _ = spec.resolve(root, bool(cfg["download"]), size, cfg["num_classes"])
    return EvalSplits(spec, root, size or spec.image_size, bool(cfg["download"]))
