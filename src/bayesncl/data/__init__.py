"""Datasets, augmentations and multi-view sampling (plain PyTorch; no Lightning)."""

from bayesncl.data.augment import (
    GRAYSCALE_AUGMENT,
    SIMCLR_AUGMENT,
    AugmentConfig,
    eval_transform,
    view_transform,
)
from bayesncl.data.datasets import (
    DATASETS,
    DatasetNotFoundError,
    DatasetSpec,
    ImageFolderLoader,
    get_dataset_spec,
    imagenet100_classes,
)
from bayesncl.data.errors import DataFileError
from bayesncl.data.folder import FolderImages
from bayesncl.data.idx import read_idx, write_idx
from bayesncl.data.scenes import TEXTURES, ScenesConfig, nuisance_labels
from bayesncl.data.views import EpochSampler, MultiViewDataset

__all__ = [
    "DATASETS",
    "GRAYSCALE_AUGMENT",
    "SIMCLR_AUGMENT",
    "TEXTURES",
    "AugmentConfig",
    "DataFileError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "EpochSampler",
    "FolderImages",
    "ImageFolderLoader",
    "MultiViewDataset",
    "ScenesConfig",
    "eval_transform",
    "get_dataset_spec",
    "imagenet100_classes",
    "nuisance_labels",
    "read_idx",
    "view_transform",
    "write_idx",
]
