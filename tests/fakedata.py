"""Tiny datasets written in the real on-disk formats (IDX, torchvision CIFAR pickles,
ImageFolder PNGs), so the real loaders are exercised without downloads."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from bayesncl.data.datasets import imagenet100_classes
from bayesncl.data.idx import write_idx


def write_fashion_mnist(root: Path, n_train: int = 64, n_test: int = 32, gz: bool = True) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):  # class-dependent bright block so classes are learnable
            images[i, 2 * y : 2 * y + 8, 4:24] = 220
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return root


def write_cifar(root: Path, classes: int = 10, n_per_file: int = 20) -> Path:
    rng = np.random.default_rng(0)

    def batch(n: int, key: str) -> dict:
        return {
            "data": rng.integers(0, 256, (n, 3 * 32 * 32)).astype(np.uint8),
            key: list(rng.integers(0, classes, n)),
        }

    if classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (folder / name).write_bytes(pickle.dumps(batch(n_per_file, "labels")))
        (folder / "batches.meta").write_bytes(
            pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
        )
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("train", "test"):
            (folder / name).write_bytes(pickle.dumps(batch(5 * n_per_file, "fine_labels")))
        (folder / "meta").write_bytes(
            pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]})
        )
    return root


def write_image_folder(root: Path, classes: list[str], per_class: int = 4, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (size, size + 8, 3)).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    return root


def write_imagenet100(root: Path, n_classes: int = 3, per_class: int = 4) -> Path:
    wnids = [*imagenet100_classes()[:n_classes], "n99999999"]  # the last is not an IN-100 class
    return write_image_folder(root, wnids, per_class)


def truncate_file(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep`` fraction of its bytes (a download that stopped early)."""
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def write_pairs(root: Path, n_train: int = 16, n_val: int = 8, size: int = 20) -> Path:
    """Image-caption pairs as image-caption datasets ship them: PNGs plus ``train.csv`` and
    ``val.csv`` (columns image, caption, label; image paths relative to the CSV). Returns root."""
    import csv

    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 220)}
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        with open(root / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "caption", "label"])
            for i in range(n):
                label = i % 3
                name, rgb = list(colours.items())[label]
                img = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
                big = i % 2 == 0
                lo, hi = (2, size - 2) if big else (6, size - 6)
                img[lo:hi, lo:hi] = rgb
                rel = f"images/{split}-{i}.png"
                Image.fromarray(img).save(root / rel)
                writer.writerow([rel, f"a {'large' if big else 'small'} {name} square", label])
    return root
