"""Datasets behind one registry. Each spec knows its classes, channels, image size, statistics,
default augmentation and how to load its train and validation splits from disk.

| name          | where it looks                                                        |
|---------------|-----------------------------------------------------------------------|
| digits        | scikit-learn's bundled 8x8 digits (always available)                  |
| fashion-mnist | DATA_DIR/FashionMNIST/raw, DATA_DIR, /usr/share/datasets/fashion-mnist |
| cifar10/100   | torchvision layout under DATA_DIR (``download`` where a network exists) |
| imagenet100   | ImageFolder DATA_DIR/{train,val}, restricted to the 100 standard classes |
| imagefolder   | any ImageFolder DATA_DIR/{train,val}                                  |
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT, AugmentConfig
from bayesncl.data.idx import read_idx

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says where we looked and how to get them."""


class TensorImages(Dataset):
    """uint8 images (n x H x W, grayscale) with integer labels; items are (1 x H x W tensor, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)
        self.targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (m x 1 x H x W, uint8) and labels of ``indices`` with one gather each."""
        return self.images[indices], self.targets[indices]


def load_digits(train: bool, data_dir: Path, download: bool) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16 scaled to 0..255); a fixed 80/20 split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    cut = int(0.8 * len(order))
    sel = order[:cut] if train else order[cut:]
    return TensorImages(images[sel], bunch.target[sel])


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}-ubyte", f"{stem}-ubyte.gz", f"{stem}.idx", f"{stem}"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(train: bool, data_dir: Path, download: bool) -> Dataset:
    """Fashion-MNIST from IDX files, searched in DATA_DIR/FashionMNIST/raw, DATA_DIR and the Debian
    package's folder; with ``download`` torchvision fetches it into DATA_DIR."""
    prefix = "train" if train else "t10k"
    candidates = [data_dir / "FashionMNIST" / "raw", data_dir, FASHION_MNIST_SYSTEM_DIR]
    for folder in candidates:
        images, labels = (
            _find_idx(folder, f"{prefix}-images-idx3"),
            _find_idx(folder, f"{prefix}-labels-idx1"),
        )
        if images and labels:
            return TensorImages(read_idx(images), read_idx(labels))
    if download:
        from torchvision.datasets import FashionMNIST

        ds = FashionMNIST(str(data_dir), train=train, download=True)
        return TensorImages(ds.data.numpy(), ds.targets.numpy())
    looked = ", ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(
        f"Fashion-MNIST ({prefix}-images-idx3-ubyte[.gz]) not found; looked in: {looked}. "
        "Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass "
        "data.download=true where a network is available."
    )


def _cifar(cls_name: str) -> Callable[[bool, Path, bool], Dataset]:
    def load(train: bool, data_dir: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        base = getattr(tvd, cls_name)

        class Cifar(base):  # type: ignore[misc, valid-type]
            # existence check instead of per-file md5 (download still verifies the archive)
            def _check_integrity(self) -> bool:
                root = Path(self.root) / self.base_folder
                return all((root / name).is_file() for name, _ in self.train_list + self.test_list)

            def _load_meta(self) -> None:
                path = Path(self.root) / self.base_folder / self.meta["filename"]
                if not path.is_file():
                    raise RuntimeError(f"{path} not found")
                with path.open("rb") as f:
                    self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
                self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        try:
            return Cifar(str(data_dir), train=train, download=download)
        except RuntimeError as err:
            folder = data_dir / base.base_folder
            raise DatasetNotFoundError(
                f"{cls_name} not found in {folder} (torchvision layout: data_batch_1..5 / train, "
                f"test_batch / test). Pass data.download=true where a network is available, or "
                f"point data.data_dir at the folder that holds {base.base_folder}/."
            ) from err

    return load


def imagenet100_classes() -> list[str]:
    """The standard ImageNet-100 WordNet IDs (CMC list, shipped with the package)."""
    text = resources.files("bayesncl").joinpath("resources/imagenet100_classes.txt").read_text()
    return text.split()


def _image_folder(restrict: list[str] | None) -> Callable[[bool, Path, bool], Dataset]:
    def load(train: bool, data_dir: Path, download: bool) -> Dataset:
        from torchvision.datasets import ImageFolder

        split = data_dir / ("train" if train else "val")
        if not split.is_dir():
            raise DatasetNotFoundError(
                f"image folder {split} not found: expected {data_dir}/train/<class>/<image> and "
                f"{data_dir}/val/<class>/<image>"
            )
        if restrict is None:
            return ImageFolder(str(split))
        wanted = sorted(restrict)

        class Subset100(ImageFolder):
            def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
                present = [c for c in wanted if (Path(directory) / c).is_dir()]
                if not present:
                    raise DatasetNotFoundError(
                        f"none of the 100 ImageNet-100 classes (e.g. {wanted[0]}) is a folder of {directory}"
                    )
                # labels index the full sorted list of 100, so models always have 100 outputs
                return present, {c: wanted.index(c) for c in present}

        return Subset100(str(split))

    return load


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: AugmentConfig
    load: Callable[[bool, Path, bool], Dataset]
    eval_resize: int | None = None


_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        "digits",
        10,
        1,
        8,
        (0.3,),
        (0.37,),
        replace(GRAYSCALE_AUGMENT, flip_prob=0.0, crop_scale_min=0.5),
        load_digits,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", 10, 1, 28, (0.286,), (0.353,), GRAYSCALE_AUGMENT, load_fashion_mnist
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        10,
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        SIMCLR_AUGMENT,
        _cifar("CIFAR10"),
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        100,
        3,
        32,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        SIMCLR_AUGMENT,
        _cifar("CIFAR100"),
    ),
    "imagenet100": DatasetSpec(
        "imagenet100",
        100,
        3,
        224,
        *_IMAGENET_STATS,
        SIMCLR_AUGMENT,
        _image_folder(imagenet100_classes()),
        256,
    ),
    "imagefolder": DatasetSpec(
        "imagefolder", 0, 3, 224, *_IMAGENET_STATS, SIMCLR_AUGMENT, _image_folder(None), 256
    ),
}


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset={name!r}; use one of: {', '.join(DATASETS)}") from None
