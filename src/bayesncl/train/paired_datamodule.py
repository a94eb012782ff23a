"""LightningDataModule of paired (two-modality) data for MMNCL (ncl-extras-spec §4.3).

Training batches ``(index, x, pair, label)``; validation batches ``(x, pair, label)``. Caption
pairs are tokenised in the loader with a :class:`~bayesncl.models.text.Tokenizer` built from the
training captions (deterministic: the same captions give the same ids), which the model stores in
its checkpoints. Shuffling, drop-last batches of equal size on every rank (the CLIP loss's
negatives are the batch) and the resume position are those of the pretraining data module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.paired import PairedSource, captions_of, get_paired_spec, pair_labels
from bayesncl.data.splits import subset
from bayesncl.models.text import Tokenizer
from bayesncl.train.datamodule import ResumableEpochs, check_loader_settings


class _Items(Dataset):
    """(epoch, i) or i -> (i, x, pair, label), the caption tokenised when a tokenizer is set."""

    def __init__(self, base: Dataset, tokenizer: Tokenizer | None, indexed: bool) -> None:
        self.base, self.tokenizer, self.indexed = base, tokenizer, indexed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[Any, ...]:
        i = key[1] if isinstance(key, tuple) else key
        x, pair, label = self.base[i]
        if self.tokenizer is not None and isinstance(pair, str):
            pair = self.tokenizer(pair)
        return (i, x, pair, label) if self.indexed else (x, pair, label)


class PairedDataModule(ResumableEpochs, pl.LightningDataModule):
    """Data for multi-modal pretraining (``task: multimodal``).

    Args:
        dataset: a paired dataset of ``bayesncl.data.paired.PAIRED_DATASETS``: ``fmnist-edges``
            (M1), ``fmnist-captions`` (M2) or ``pairs`` (your CSV/JSONL of image, caption).
        data_dir: where Fashion-MNIST lives (M1, M2).
        pairs_file, val_pairs_file: ``pairs``: the training and validation files (image paths
            relative to each file; without a validation file the training file is used).
        image_key, caption_key, label_key: ``pairs``: the columns (label optional).
        mode: ``pairs``: read images as ``L`` (grayscale) or ``RGB``.
        image_size: ``pairs``: resize images to this square size (None: as stored).
        batch_size: pairs per process per step (>= 2: the batch holds the negatives).
        val_batch_size: pairs per validation batch (default ``batch_size``).
        num_workers: loader processes (0 = in the main process).
        train_subset, val_subset: use only this many pairs (quick runs, tests).
        min_count, max_length: the tokenizer's vocabulary (words seen at least ``min_count``
            times in the training captions) and caption length in tokens.
        class_names: ``pairs`` with labels: the name of each label (index = label), for
            zero-shot classification from prompts ("a {name}", "a photo of a {name}").
        seed: seed of shuffling.
    """

    def __init__(
        self,
        dataset: Literal["fmnist-edges", "fmnist-captions", "pairs"] = "fmnist-edges",
        data_dir: str = "data",
        pairs_file: str | None = None,
        val_pairs_file: str | None = None,
        image_key: str = "image",
        caption_key: str = "caption",
        label_key: str | None = None,
        mode: Literal["L", "RGB"] = "RGB",
        image_size: int | None = None,
        batch_size: int = 256,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        train_subset: int | None = None,
        val_subset: int | None = None,
        min_count: int = 1,
        max_length: int = 16,
        class_names: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.spec = get_paired_spec(dataset)
        if batch_size < 2:
            raise ValueError(
                f"data.batch_size={batch_size} must be >= 2: the CLIP loss's negatives are the "
                "other pairs of the batch"
            )
        check_loader_settings(num_workers, train_subset, val_subset)
        if image_size is not None and image_size < 1:
            raise ValueError(f"data.image_size={image_size} must be >= 1 (or unset: as stored)")
        if min_count < 1 or max_length < 1:
            raise ValueError(
                f"data.min_count={min_count} and data.max_length={max_length} must be >= 1"
            )
        self.source = PairedSource(
            Path(data_dir),
            pairs_file,
            val_pairs_file,
            image_key,
            caption_key,
            label_key,
            mode,
            image_size,
        )
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.train_subset, self.val_subset = train_subset, val_subset
        self.init_position()
        #: the raw training split, read now: the models' sizes (channels, image size,
        #: vocabulary) come from it, and a missing file fails before training starts
        self.train_pairs = self.load(True)
        x0, pair0, _ = self.train_pairs[0]
        if not isinstance(x0, Tensor) or x0.dim() != 3:
            raise ValueError(f"data.dataset={dataset}: the first modality must be images (C, H, W)")
        self.in_channels, self.image_size = int(x0.shape[0]), int(x0.shape[-1])
        self.tokenizer: Tokenizer | None = None
        #: channels of image partners (0 for captions)
        self.pair_channels = 0
        if self.spec.pair == "text":
            self.tokenizer = Tokenizer.fit(captions_of(self.train_pairs), min_count, max_length)
        else:
            self.pair_channels = int(pair0.shape[0])
        labels = pair_labels(self.train_pairs)
        self.labels_known = bool((labels >= 0).all())
        if class_names is not None and self.spec.classes is not None:
            raise ValueError(
                f"data.class_names: data.dataset={dataset} names its classes itself; set "
                "class names only for your own pairs (data.dataset=pairs)"
            )
        if class_names is not None and (
            not self.labels_known or len(class_names) <= int(labels.max())
        ):
            raise ValueError(
                f"data.class_names has {len(class_names)} names, but the pairs' labels "
                f"{'are missing (set data.label_key)' if not self.labels_known else f'reach {int(labels.max())}'}"
                ": give one name per label, in label order"
            )
        self.class_names = tuple(class_names) if class_names is not None else self.spec.classes
        #: classes of the labels (0 when unknown): the class names' count, else max label + 1
        self.num_classes = (
            0
            if not self.labels_known
            else len(self.class_names)
            if self.class_names
            else int(labels.max()) + 1
        )
        self._val: Dataset | None = None

    @property
    def pair_kind(self) -> str:
        """``image`` (a tensor partner) or ``text`` (a caption)."""
        return self.spec.pair

    def load(self, train: bool) -> Dataset:
        """The raw paired split: items (x, pair, label), captions as strings."""
        ds = self.spec.load(train, self.source)
        return subset(ds, self.train_subset if train else self.val_subset)

    def setup(self, stage: str | None = None) -> None:
        if self._val is None:
            self._val = self.load(False)

    def train_dataloader(self) -> DataLoader:
        items = _Items(self.train_pairs, self.tokenizer, indexed=True)
        return DataLoader(
            items,
            batch_size=self.batch_size,
            sampler=self.epoch_sampler(len(items)),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            _Items(self._val, self.tokenizer, indexed=False),  # type: ignore[arg-type]
            batch_size=self.val_batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is not None and self.trainer.training:
            self.count_batch()
        return batch
