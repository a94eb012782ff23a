"""Datasets behind one registry. Each spec knows its classes, channels, image size, statistics,
default augmentation and how to load its train and validation splits from disk.

| name          | where it looks                                                        |
|---------------|-----------------------------------------------------------------------|
| digits        | scikit-learn's bundled 8x8 digits (always available)                  |
| fashion-mnist | DATA_DIR/FashionMNIST/raw, DATA_DIR, /usr/share/datasets/fashion-mnist |
| cifar10/100   | torchvision layout under DATA_DIR (``download`` where a network exists) |
| imagenet100   | image folders DATA_DIR/{train,val}, restricted to the 100 standard classes |
| imagefolder   | any image folders DATA_DIR/{train,val}                                |

Files are checked as they are read: a corrupt, truncated or foreign file, or two files that do
not belong together (images and labels of different lengths), is a :class:`DataFileError`
naming the file(s); image folders take their class list, and so every label, from ``train/``.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT, AugmentConfig
from bayesncl.data.errors import DataFileError
from bayesncl.data.folder import FolderImages, class_folders
from bayesncl.data.idx import read_idx

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says where we looked and how to get them."""


class TensorImages(Dataset):
    """uint8 images (n x H x W, grayscale) with integer labels; items are (1 x H x W tensor, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)
        self.targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (m x 1 x H x W, uint8) and labels of ``indices`` with one gather each."""
        return self.images[indices], self.targets[indices]


class ArrayImages(Dataset):
    """uint8 RGB images (n x H x W x 3) with labels; items are (PIL image, label), as with
    torchvision's CIFAR datasets (same ``data``, ``targets`` and ``classes``)."""

    def __init__(self, data: np.ndarray, targets: np.ndarray, classes: list[str]) -> None:
        if len(data) != len(targets):
            raise ValueError(f"{len(data)} images but {len(targets)} labels")
        self.data = data
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.data[i]), self.targets[i]


def _check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFileError(
            f"{source}: labels range over {labels.min()}..{labels.max()}, expected "
            f"0..{num_classes - 1}: not a file of this dataset"
        )


def load_digits(train: bool, data_dir: Path, download: bool) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16 scaled to 0..255); a fixed 80/20 split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    cut = int(0.8 * len(order))
    sel = order[:cut] if train else order[cut:]
    return TensorImages(images[sel], bunch.target[sel])


_SAID: set[tuple[str, str]] = set()


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}-ubyte", f"{stem}-ubyte.gz", f"{stem}.idx", f"{stem}"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> TensorImages:
    """Images (n x H x W uint8) and labels (n, in 0..num_classes-1) from two IDX files; files
    of other shapes, kinds or lengths are a :class:`DataFileError` naming both."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFileError(
            f"{images_path}: expected uint8 images (n x H x W), found {images.dtype} of shape "
            f"{images.shape} (images and labels files swapped?)"
        )
    if labels.ndim != 1:
        raise DataFileError(
            f"{labels_path}: expected labels (n), found shape {labels.shape} (images and labels "
            "files swapped?)"
        )
    if len(images) != len(labels):
        raise DataFileError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels: the two files are not a pair (e.g. test labels next to train images); "
            "use the images and labels of the same split"
        )
    _check_labels(labels, num_classes, str(labels_path))
    return TensorImages(images, labels)


def _same_dir(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def load_fashion_mnist(train: bool, data_dir: Path, download: bool) -> Dataset:
    """Fashion-MNIST from IDX files, searched in DATA_DIR/FashionMNIST/raw, DATA_DIR and the Debian
    package's folder (saying so on stderr when it falls back to that); with ``download``
    torchvision fetches it into DATA_DIR. A folder holding one file of a split's pair but not the
    other is an error, not a reason to look elsewhere."""
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3", f"{prefix}-labels-idx1")
    own = [data_dir / "FashionMNIST" / "raw", data_dir]
    system = FASHION_MNIST_SYSTEM_DIR
    candidates = [*own, system]
    for folder in candidates:
        images, labels = _find_idx(folder, stems[0]), _find_idx(folder, stems[1])
        if images and labels:
            said = (str(data_dir), prefix)
            if (
                folder is system
                and not any(_same_dir(system, o) for o in own)
                and said not in _SAID
            ):
                _SAID.add(said)  # once per process and split
                print(
                    f"bayesncl: fashion-mnist: no {prefix} files in data.data_dir={data_dir}; "
                    f"using the system copy {images} and {labels}",
                    file=sys.stderr,
                )
            return read_idx_pair(images, labels, 10)
        if images or labels:
            found, missing = (images, stems[1]) if images else (labels, stems[0])
            raise DatasetNotFoundError(
                f"{found} is there but its partner {missing}-ubyte[.gz] is not in {folder}: "
                "put both files of the split in the same folder"
            )
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


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR python file (a pickled dict); a truncated or foreign file names ``path``."""
    with path.open("rb") as f:
        try:
            obj = pickle.load(f, encoding="latin1")
        except Exception as err:  # any unpickling failure means a bad file
            raise DataFileError(
                f"{path}: not a readable CIFAR python file ({type(err).__name__}: {err}); it is "
                "truncated or corrupt: download it again"
            ) from None
    if not isinstance(obj, dict):
        raise DataFileError(
            f"{path}: not a CIFAR python file (holds a {type(obj).__name__}, expected a dict)"
        )
    return obj


def _cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (n x 3072 uint8) and labels of one CIFAR batch file, checked against each other."""
    entry = _unpickle(path)
    key = "labels" if "labels" in entry else "fine_labels"
    if "data" not in entry or key not in entry:
        raise DataFileError(
            f"{path}: not a CIFAR batch (keys {sorted(map(str, entry))}; expected 'data' and "
            "'labels' or 'fine_labels')"
        )
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFileError(
            f"{path}: 'data' is {data.dtype} of shape {data.shape}, expected uint8 rows of "
            "3072 (3 x 32 x 32) values"
        )
    try:
        labels = np.asarray(entry[key], dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise DataFileError(f"{path}: '{key}' are not integers ({err})") from None
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataFileError(
            f"{path} holds {len(data)} images but {labels.size} labels ('{key}'): truncated or "
            "corrupt, download it again"
        )
    _check_labels(labels, num_classes, f"{path} ('{key}')")
    return data, labels


def _cifar(cls_name: str, num_classes: int) -> Callable[[bool, Path, bool], Dataset]:
    def load(train: bool, data_dir: Path, download: bool) -> Dataset:
        import torchvision.datasets as tvd

        base = getattr(tvd, cls_name)  # for the file names and the download
        folder = data_dir / base.base_folder
        batches = [folder / name for name, _ in (base.train_list if train else base.test_list)]
        meta = folder / base.meta["filename"]

        def missing() -> list[Path]:
            return [p for p in [*batches, meta] if not p.is_file()]

        if missing() and download:
            base(str(data_dir), train=train, download=True)  # checks the archive's md5
        if missing():
            raise DatasetNotFoundError(
                f"{cls_name} not found in {folder} ({missing()[0].name} is missing; torchvision "
                f"layout: data_batch_1..5 / train, test_batch / test). Pass data.download=true "
                f"where a network is available, or point data.data_dir at the folder that holds "
                f"{base.base_folder}/."
            )
        classes = _unpickle(meta).get(base.meta["key"])
        if not isinstance(classes, list) or len(classes) != num_classes:
            raise DataFileError(
                f"{meta}: expected {num_classes} class names under {base.meta['key']!r}: not the "
                f"meta file of {cls_name}"
            )
        parts = [_cifar_batch(p, num_classes) for p in batches]
        data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return ArrayImages(data, np.concatenate([y for _, y in parts]), classes)

    return load


def imagenet100_classes() -> list[str]:
    """The standard ImageNet-100 WordNet IDs (CMC list, shipped with the package)."""
    text = resources.files("bayesncl").joinpath("resources/imagenet100_classes.txt").read_text()
    return text.split()


@dataclass(frozen=True)
class ImageFolderLoader:
    """Loads DATA_DIR/{train,val}/<class>/<image> (:class:`FolderImages`).

    One class list for both splits, from ``train/``: a validation split without some class keeps
    the labels of the others, and a validation class folder that train does not have is an
    error naming it. With ``restrict`` (ImageNet-100) only those classes are read, labelled by
    their index in the sorted ``restrict`` list (so a model always has ``len(restrict)``
    outputs); other folders are ignored. ``num_classes``: the model's outputs; fewer than the
    class folders of train is an error. ``skip_corrupt``: see :class:`FolderImages`.
    """

    restrict: tuple[str, ...] | None = None
    num_classes: int | None = None
    skip_corrupt: bool = False

    def class_to_idx(self, train_dir: Path) -> dict[str, int]:
        """Label of each class of the training split (the labels of every split)."""
        folders = class_folders(train_dir)
        if self.restrict is None:
            if not folders:
                raise DatasetNotFoundError(
                    f"image folder {train_dir} has no class folders: expected "
                    f"{train_dir}/<class>/<image>"
                )
            if self.num_classes is not None and len(folders) > self.num_classes:
                raise ValueError(
                    f"data.num_classes={self.num_classes} but {train_dir} has {len(folders)} "
                    f"class folders: set data.num_classes={len(folders)} (or remove folders)"
                )
            return {c: i for i, c in enumerate(folders)}
        index = {c: i for i, c in enumerate(sorted(self.restrict))}
        present = [c for c in folders if c in index]
        if not present:
            raise DatasetNotFoundError(
                f"none of the {len(index)} classes (e.g. {min(index)}) is a folder of {train_dir}"
            )
        return {c: index[c] for c in present}

    def __call__(self, train: bool, data_dir: Path, download: bool) -> Dataset:
        train_dir = data_dir / "train"
        split = data_dir / ("train" if train else "val")
        for d in dict.fromkeys([train_dir, split]):
            if not d.is_dir():
                raise DatasetNotFoundError(
                    f"image folder {d} not found: expected {data_dir}/train/<class>/<image> and "
                    f"{data_dir}/val/<class>/<image> (the classes of both come from train/)"
                )
        class_to_idx = self.class_to_idx(train_dir)
        if not train:
            folders = class_folders(split)
            if self.restrict is not None:
                folders = [c for c in folders if c in set(self.restrict)]
            unknown = [c for c in folders if c not in class_to_idx]
            if unknown:
                shown = ", ".join(str(split / c) for c in unknown[:5])
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                raise DataFileError(
                    f"class folder {shown}{more} of the validation split is not a class of "
                    f"{train_dir}: labels come from the training split's classes; add the class "
                    "to train/ or remove it from val/"
                )
        return FolderImages(split, class_to_idx, require_all=train, skip_corrupt=self.skip_corrupt)


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
    #: class names by label, where fixed by the dataset (digits, Fashion-MNIST); datasets that
    #: name their classes in their files (CIFAR, image folders) give them as ``dataset.classes``
    classes: tuple[str, ...] | None = None

    def eval_resize_for(self, image_size: int) -> int | None:
        """The Resize before the evaluation centre crop: the dataset's own (ImageNet-100:
        256 -> 224), or for datasets of the images' own size (image folders) the crop size, so
        images of other sizes batch together (identity for square images of that size)."""
        return self.eval_resize if self.image_size else image_size

    def resolve(
        self,
        data_dir: Path,
        download: bool = False,
        image_size: int | None = None,
        num_classes: int | None = None,
    ) -> tuple[int, int]:
        """(image size, number of classes) of a run: the ones asked for, else the dataset's;
        for image folders (0 in the spec) the class folders of train/ and the shorter side of
        its first image, so 28-px images are not upscaled to 224 px unless asked."""
        if (image_size or self.image_size) and (num_classes or self.num_classes):
            return image_size or self.image_size, num_classes or self.num_classes
        train = self.load(True, Path(data_dir), download)
        if not (image_size or self.image_size):
            first = train[0][0]
            shape = first.shape[-2:] if isinstance(first, torch.Tensor) else first.size
            image_size = int(min(shape))
        return image_size or self.image_size, num_classes or self.num_classes or len(train.classes)

    def configured(self, num_classes: int | None = None, skip_corrupt: bool = False) -> DatasetSpec:
        """This spec with the options of ``SSLDataModule`` checked and given to its loader:
        ``num_classes`` (the model's outputs) may not be below the dataset's classes (for image
        folders: below the class folders of train, checked when loading); ``skip_corrupt`` exists
        for image folders only."""
        if num_classes is not None:
            if num_classes < 1:
                raise ValueError(f"data.num_classes={num_classes} must be >= 1")
            if num_classes < self.num_classes:
                raise ValueError(
                    f"data.num_classes={num_classes} is smaller than the {self.num_classes} "
                    f"classes of {self.name}: leave it unset"
                )
        if not isinstance(self.load, ImageFolderLoader):
            if skip_corrupt:
                raise ValueError(
                    f"data.skip_corrupt applies to image folders (imagenet100, imagefolder), "
                    f"not to {self.name}, whose files are read whole: leave it false"
                )
            return self
        loader = replace(self.load, num_classes=num_classes, skip_corrupt=skip_corrupt)
        return replace(self, load=loader)


_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

#: Fashion-MNIST's labels 0..9 (Xiao et al. 2017, the dataset's README)
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

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
        classes=tuple(str(i) for i in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        10,
        1,
        28,
        (0.286,),
        (0.353,),
        GRAYSCALE_AUGMENT,
        load_fashion_mnist,
        classes=FASHION_MNIST_CLASSES,
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        10,
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        SIMCLR_AUGMENT,
        _cifar("CIFAR10", 10),
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        100,
        3,
        32,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        SIMCLR_AUGMENT,
        _cifar("CIFAR100", 100),
    ),
    "imagenet100": DatasetSpec(
        "imagenet100",
        100,
        3,
        224,
        *_IMAGENET_STATS,
        SIMCLR_AUGMENT,
        ImageFolderLoader(tuple(imagenet100_classes())),
        256,
    ),
    # classes (0) and image size (0) come from the data: train/'s folders, the images' own size
    "imagefolder": DatasetSpec(
        "imagefolder", 0, 3, 0, *_IMAGENET_STATS, SIMCLR_AUGMENT, ImageFolderLoader(), None
    ),
}


def class_names(spec: DatasetSpec, dataset: Dataset | None = None) -> list[str]:
    """The name of each label: the loaded dataset's own ``classes`` (CIFAR's meta file, image
    folders' class folders), else the spec's (digits, Fashion-MNIST), else ``"0"``, ``"1"``, ...
    (``spec.num_classes`` of them; none for a dataset whose classes come from its files). A
    ``class_to_idx`` places each name at its label (ImageNet-100 without some class folders)."""
    to_idx = getattr(dataset, "class_to_idx", None)
    if to_idx:
        names = [str(i) for i in range(max(spec.num_classes, max(to_idx.values()) + 1))]
        for name, i in to_idx.items():
            names[i] = str(name)
        return names
    own = getattr(dataset, "classes", None) if dataset is not None else None
    if own:
        return [str(c) for c in own]
    if spec.classes:
        return list(spec.classes)
    return [str(i) for i in range(spec.num_classes)]


def known_class_names(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[str] | None:
    """Class names known without reading any image (for an export's config): the spec's, the
    sorted ImageNet-100 WordNet IDs (their labels' order), the class folders of an image
    folder's DATA_DIR/train where it exists; else None (CIFAR: in its files)."""
    if spec.classes:
        return list(spec.classes)
    if isinstance(spec.load, ImageFolderLoader):
        if spec.load.restrict is not None:
            return sorted(spec.load.restrict)
        train = Path(data_dir) / "train" if data_dir else None
        if train is not None and train.is_dir():
            return class_folders(train) or None
    return None


#: functions that make the spec of a dataset name not in DATASETS (a family of names such as
#: ``scenes-pi35``), or return None; a module that defines such a family appends its resolver
SPEC_RESOLVERS: list[Callable[[str], DatasetSpec | None]] = []


def get_dataset_spec(name: str) -> DatasetSpec:
    if name in DATASETS:
        return DATASETS[name]
    for resolve in SPEC_RESOLVERS:
        spec = resolve(name)
        if spec is not None:
            return spec
    raise ValueError(f"dataset={name!r}; use one of: {', '.join(DATASETS)}")
