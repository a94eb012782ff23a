"""Image-folder datasets (ROOT/<class>/<image>) with one class list for every split and clear
errors on unreadable images.

Unlike torchvision's ``ImageFolder``, the class list (and so every label) is given, not read from
the split's own folders: a validation split that lacks a class must not renumber the classes after
it. Items and their order are those of ``ImageFolder`` (classes in sorted order, files walked in
sorted order, the same image extensions), so subsets and resumed runs see the same images.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from bayesncl.data.errors import DataFileError

#: file endings read as images (torchvision's ImageFolder list, compared in lower case)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def class_folders(directory: Path) -> list[str]:
    """Sorted names of the sub-folders of ``directory`` (hidden ones, e.g. ``.ipynb_checkpoints``,
    are not classes)."""
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    out = []
    for root, _, names in sorted(os.walk(folder, followlinks=True)):
        out += [Path(root) / n for n in sorted(names) if n.lower().endswith(IMG_EXTENSIONS)]
    return out


def read_rgb(path: Path) -> Image.Image:
    """The image at ``path`` as RGB, fully decoded (so a truncated file fails here)."""
    with open(path, "rb") as f:
        image = Image.open(f)
        return image.convert("RGB")


class FolderImages(Dataset):
    """Images of ``root/<class>/...`` for the classes of ``class_to_idx``; items (RGB PIL image,
    label).

    Args:
        root: the split's folder.
        class_to_idx: label of each class folder (folders of ``root`` not in it are not read;
            classes without a folder have no images).
        require_all: every class must have a folder with images (the training split).
        skip_corrupt: an unreadable image (empty, truncated, not an image) is skipped: the item
            becomes the next readable image of the split (a fixed rule, so resumed runs stay
            exact), and each skipped file is reported once per process on stderr with the count
            so far (:attr:`skipped`). Without it, reading one is a :class:`DataFileError` naming
            the file. Files are checked when read, not up front (a full decode of every image
            would cost minutes on ImageNet).
    """

    def __init__(
        self,
        root: Path,
        class_to_idx: dict[str, int],
        require_all: bool = False,
        skip_corrupt: bool = False,
    ) -> None:
        self.root, self.skip_corrupt = Path(root), skip_corrupt
        self.class_to_idx = dict(class_to_idx)
        self.classes = sorted(self.class_to_idx)
        self.samples: list[tuple[Path, int]] = []
        for name in self.classes:
            folder = self.root / name
            files = _image_files(folder) if folder.is_dir() else []
            if require_all and not files:
                raise DataFileError(
                    f"class folder {folder} is missing or holds no images "
                    f"({', '.join(IMG_EXTENSIONS)})"
                )
            self.samples += [(p, self.class_to_idx[name]) for p in files]
        if not self.samples:
            raise DataFileError(f"{self.root} holds no images in its class folders")
        self.targets = [label for _, label in self.samples]
        self.imgs = self.samples  # torchvision's alias
        #: unreadable files met (and skipped) in this process
        self.skipped: set[Path] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        n = len(self.samples)
        for k in range(n):
            path, label = self.samples[(i + k) % n]
            if path in self.skipped:
                continue
            try:
                return read_rgb(path), label
            except Exception as err:  # any decoder failure: unreadable
                reason = f"{type(err).__name__}: {err}"
                if not self.skip_corrupt:
                    raise DataFileError(
                        f"{path}: unreadable image ({reason}); replace or delete it, or set "
                        "data.skip_corrupt=true to skip unreadable images"
                    ) from None
                self.skipped.add(path)
                print(
                    f"bayesncl: data.skip_corrupt: skipped unreadable image {path} ({reason}); "
                    f"{len(self.skipped)} skipped so far in this process",
                    file=sys.stderr,
                )
        raise DataFileError(f"no readable image in {self.root} ({n} files, all unreadable)")
