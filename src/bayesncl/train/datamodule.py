"""LightningDataModule: multi-view training batches (index, views, label) and plain validation
batches (image, label) for any dataset of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.augment import AugmentConfig, eval_transform, view_transform
from bayesncl.data.batch_augment import BatchAugment
from bayesncl.data.datasets import get_dataset_spec
from bayesncl.data.splits import Transformed, subset
from bayesncl.data.views import EpochSampler, IndexedImages, MultiViewDataset, _mix


def check_loader_settings(
    num_workers: int, train_subset: int | None, val_subset: int | None
) -> None:
    """The data settings every data module shares: loader processes and split subsets."""
    if num_workers < 0:
        raise ValueError(f"data.num_workers={num_workers} must be >= 0")
    for key, n in (("train_subset", train_subset), ("val_subset", val_subset)):
        if n is not None and n < 1:
            raise ValueError(f"data.{key}={n} must be >= 1 (or unset: the whole split)")


class ResumableEpochs:
    """The training stream's position, for data modules that shuffle with :class:`EpochSampler`:
    counted as batches arrive, saved in every checkpoint (``state_dict``) and restored, so a run
    resumed mid-epoch continues with the batches it had not seen. Needs ``self.trainer``,
    ``self.batch_size`` and ``self.seed``."""

    trainer: Any
    batch_size: int
    seed: int

    def init_position(self) -> None:
        self._resume_from: dict[str, int] | None = None
        # (epoch, training batches of it done): counted, saved in checkpoints, restored
        self._position: tuple[int, int] = (0, 0)

    def epoch_sampler(self, size: int) -> EpochSampler:
        """This rank's shuffled, drop-last sampler, starting where a resumed run stopped."""
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        sampler = EpochSampler(size, self.batch_size, self.seed, rank, world)
        if self._resume_from is not None:
            epoch, done = self.resume_position(self._resume_from, sampler.num_batches)
            # Set now, not only in Lightning's set_epoch: with loader workers the first iterator
            # is built (and prefetches from the sampler) before set_epoch is called, and a run
            # resumed in epoch >= 1 keeps that iterator for its first epoch.
            sampler.resume_at(epoch, done)
            self._position = (epoch, done)
        return sampler

    def count_batch(self) -> None:
        """One more training batch of the current epoch has arrived."""
        epoch, done = self._position
        current = self.trainer.current_epoch
        self._position = (current, done + 1) if epoch == current else (current, 1)

    @staticmethod
    def resume_position(state: dict[str, int], sampler_batches: int) -> tuple[int, int]:
        """(epoch, batches of it already trained on) where a resumed run starts.

        The state holds the epoch and the batches of it done when the checkpoint was written,
        and the epoch's length then (``trainer.num_training_batches``, which
        ``limit_train_batches`` shortens): a finished epoch resumes at the next one. States of
        checkpoints from before this was stored hold only ``global_step`` and are derived from it
        (exact only with full epochs).
        """
        epoch = int(state.get("epoch", 0))
        if "batches_done" in state:
            done, length = int(state["batches_done"]), int(state["epoch_batches"])
        else:
            done = int(state["global_step"]) * int(state.get("accumulate", 1))
            done, length = done - epoch * sampler_batches, sampler_batches
        if done >= length:
            return epoch + 1, 0
        return epoch, max(done, 0)

    def state_dict(self) -> dict[str, int]:
        """Saved in every checkpoint: where in the data stream training stands (the epoch, the
        training batches of it done, counted as they arrive, and the epoch's length)."""
        t = self.trainer
        if t is None:
            return {}
        epoch, done = self._position
        if epoch != t.current_epoch:  # saved before the first batch of a new epoch
            epoch, done = t.current_epoch, 0
        length = t.num_training_batches
        return {
            "epoch": epoch,
            "batches_done": done,
            "epoch_batches": int(length) if length != float("inf") else 2**62,
            "global_step": t.global_step,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        # called while a checkpoint is restored, before the training loader is built
        self._resume_from = dict(state) if state else None


class SSLDataModule(ResumableEpochs, pl.LightningDataModule):
    """Data for pretraining.

    Args:
        dataset: ``digits``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``imagenet100`` or
            ``imagefolder``.
        data_dir: where the dataset lives (see ``bayesncl.data.datasets``).
        batch_size: images per process per step (each gives ``num_views`` views).
        num_views: views per image (contrastive objectives need >= 2; supervised ones take 1).
        num_workers: loader processes (0 = in the main process).
        augment: changes to the dataset's default view augmentation.
        image_size: crop size (default: the dataset's native size).
        train_subset, val_subset: use only this many images (quick runs, tests).
        num_classes: classes of an ``imagefolder`` dataset (others know theirs).
        download: let torchvision download CIFAR/Fashion-MNIST where a network exists.
        seed: seed of shuffling and augmentation (batches are a function of seed, epoch, step).
        augment_on: ``sample`` (torchvision per image, in the loader workers: the official path),
            ``batch`` (whole batch at once on the model's device, :mod:`bayesncl.data.batch_augment`;
            every official op, hue included) or ``auto`` (batch for the grayscale datasets, sample otherwise).
        skip_corrupt: image folders: skip unreadable images (each reported on stderr) instead of
            stopping with an error naming the file.
    """

    def __init__(
        self,
        dataset: str = "digits",
        data_dir: str = "data",
        batch_size: int = 256,
        val_batch_size: int | None = None,
        num_views: int = 2,
        num_workers: int = 2,
        augment: AugmentConfig = AugmentConfig(),
        image_size: int | None = None,
        train_subset: int | None = None,
        val_subset: int | None = None,
        num_classes: int | None = None,
        download: bool = False,
        seed: int = 0,
        augment_on: Literal["auto", "sample", "batch"] = "auto",
        skip_corrupt: bool = False,
    ) -> None:
        super().__init__()
        self.spec = get_dataset_spec(dataset).configured(num_classes, skip_corrupt)
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size} must be >= 1")
        if num_views < 1:
            raise ValueError(f"data.num_views={num_views} must be >= 1")
        check_loader_settings(num_workers, train_subset, val_subset)
        if image_size is not None and image_size < 1:
            raise ValueError(f"data.image_size={image_size} must be >= 1 (or unset: native size)")
        self.data_dir = Path(data_dir)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_views, self.num_workers, self.download, self.seed = (
            num_views,
            num_workers,
            download,
            seed,
        )
        self.train_subset, self.val_subset = train_subset, val_subset
        self.augment = augment.merged_over(self.spec.augment)
        self.image_size, self.num_classes = self.spec.resolve(
            self.data_dir, download, image_size, num_classes
        )
        self.in_channels = self.spec.in_channels
        if augment_on == "auto":
            augment_on = "batch" if self.spec.in_channels == 1 else "sample"
        if augment_on == "batch" and (
            self.spec.eval_resize is not None or not self.spec.image_size
        ):
            raise ValueError(
                f"data.augment_on=batch needs equal-size images; {dataset} needs augment_on=sample"
            )
        self.augment_on = augment_on
        self.batch_augment = (
            BatchAugment(self.augment, self.image_size, self.spec.mean, self.spec.std)
            if augment_on == "batch"
            else None
        )
        self._train: Dataset | None = None
        self._val: Dataset | None = None
        self.init_position()

    def load(self, train: bool) -> Dataset:
        """The raw split (images, labels) with no transform."""
        ds = self.spec.load(train, self.data_dir, self.download)
        return subset(ds, self.train_subset if train else self.val_subset)

    def eval_transform(self):
        resize = self.spec.eval_resize_for(self.image_size)
        return eval_transform(self.image_size, self.spec.mean, self.spec.std, resize)

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            if self.batch_augment is not None:
                self._train = IndexedImages(self.load(True))
            else:
                views = view_transform(self.augment, self.image_size, self.spec.mean, self.spec.std)
                self._train = MultiViewDataset(self.load(True), views, self.num_views, self.seed)
            self._val = Transformed(self.load(False), self.eval_transform())

    def _loader(self, ds: Dataset, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=sampler is not None,
            collate_fn=ds.collate if isinstance(ds, IndexedImages) else None,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        sampler = self.epoch_sampler(len(self._train))  # type: ignore[arg-type]
        return self._loader(self._train, self.batch_size, sampler)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self._val, self.val_batch_size)  # type: ignore[arg-type]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Counts training batches (the resume position) and, on the batch path, makes the views
        on the device: (index, images, label) -> (index, views, label)."""
        if self.trainer is None or not self.trainer.training:
            return batch
        self.count_batch()
        if self.batch_augment is None:
            return batch
        idx, images, labels = batch
        return idx, self.make_views(images, self.trainer.global_step), labels

    def make_views(self, images: torch.Tensor, step: int) -> list[torch.Tensor]:
        """``num_views`` views of a batch; randomness is a function of (seed, step)."""
        assert self.batch_augment is not None
        g = torch.Generator(device=images.device).manual_seed(_mix(self.seed, step))
        return self.batch_augment.views(images, g, self.num_views)
