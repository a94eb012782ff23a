"""``bayesncl encode MODEL (--images DIR | --imagefolder DIR | --dataset NAME) --out F.npz``.

Runs a trained encoder (export directory, checkpoint or run directory) over images, in batches,
with the evaluation's preprocessing, and writes F.npz with ``features`` (N x K float32, the
representation ``bayesncl evaluate`` measures), ``labels`` (where known), ``classes`` (their
names, where known) and ``paths`` (image files) or ``indices`` (positions in the dataset split).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.datasets import class_names, get_dataset_spec
from bayesncl.data.errors import DataFileError
from bayesncl.data.folder import IMG_EXTENSIONS, FolderImages, class_folders
from bayesncl.export.model import Preprocessing, TrainedEncoder, describe, load

SPLITS = ("test", "val", "train")


def open_image(path: Path) -> Image.Image:
    """The image at ``path``, fully decoded, as ``L`` (grayscale files) or ``RGB``."""
    try:
        with Image.open(path) as im:
            return im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    except Exception as err:  # any decoder failure: unreadable
        raise DataFileError(
            f"{path}: unreadable image ({type(err).__name__}: {err}); replace or delete it"
        ) from None


class ImageFiles(Dataset):
    """Every image file under a folder (recursively, sorted); items (PIL image, -1)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"--images {root}: no such directory")
        self.paths = sorted(
            p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS)
        )
        if not self.paths:
            raise DataFileError(f"--images {root}: no image files ({', '.join(IMG_EXTENSIONS)})")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return open_image(self.paths[i]), -1


@dataclass
class ImageSource:
    """Images to encode: raw items (image, label) and how to name them in the output."""

    dataset: Dataset
    description: str
    paths: list[str] | None = None  # image files, or
    indices: np.ndarray | None = None  # positions in the dataset split
    classes: list[str] | None = None
    has_labels: bool = True

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def ids(self) -> dict[str, np.ndarray]:
        if self.paths is not None:
            return {"paths": np.asarray(self.paths, dtype=str)}
        return {"indices": np.asarray(self.indices, dtype=np.int64)}


class _Subset(Dataset):
    def __init__(self, base: Dataset, index: np.ndarray) -> None:
        self.base, self.index = base, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Any:
        return self.base[int(self.index[i])]


def _limited(n: int, limit: int | None) -> np.ndarray:
    """All positions, or ``limit`` of them from a fixed class-mixed permutation, in order."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"--limit {limit} must be >= 1")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:limit]
    return np.sort(order.numpy())


def image_source(
    pre: Preprocessing,
    *,
    images: str | None = None,
    imagefolder: str | None = None,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    limit: int | None = None,
) -> ImageSource:
    """The images of one of: a folder of image files, an image folder ``DIR/<class>/<image>``,
    or a dataset split (default: the model's own dataset, its held-out split)."""
    if sum(x is not None for x in (images, imagefolder, dataset)) > 1:
        raise ValueError("give one of --images, --imagefolder, --dataset")
    if images is not None:
        files = ImageFiles(Path(images))
        index = _limited(len(files), limit)
        return ImageSource(
            _Subset(files, index),
            f"{len(index)} images under {images}",
            paths=[str(files.paths[i]) for i in index],
            has_labels=False,
        )
    if imagefolder is not None:
        root = Path(imagefolder)
        if not root.is_dir():
            raise FileNotFoundError(f"--imagefolder {root}: no such directory")
        classes = class_folders(root)
        if not classes:
            raise DataFileError(
                f"--imagefolder {root} has no class folders: expected {root}/<class>/<image> "
                "(for image files without classes use --images)"
            )
        folder = FolderImages(root, {c: i for i, c in enumerate(classes)})
        index = _limited(len(folder), limit)
        return ImageSource(
            _Subset(folder, index),
            f"{len(index)} images of {len(classes)} classes under {root}",
            paths=[str(folder.samples[i][0]) for i in index],
            classes=classes,
        )
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}; use one of: {', '.join(SPLITS)} (test = val)")
    name = dataset or pre.dataset
    spec = get_dataset_spec(name)
    root = Path(data_dir or pre.data_dir or "data")
    ds = spec.load(split == "train", root, False)
    index = _limited(len(ds), limit)  # type: ignore[arg-type]
    return ImageSource(
        _Subset(ds, index),
        f"{len(index)} images of {name} ({split})",
        indices=index,
        classes=class_names(spec, ds),
    )


class Progress:
    """``encode: 1024/10000 images (10%), 3.1 s``: rewritten in place in a terminal, a line
    at every 25% otherwise (stderr)."""

    def __init__(self, total: int, what: str = "encode") -> None:
        self.total, self.what, self.start = total, what, time.perf_counter()
        self.tty, self.shown = sys.stderr.isatty(), -1

    def update(self, done: int) -> None:
        pct = 100 * done // max(self.total, 1)
        line = (
            f"{self.what}: {done}/{self.total} images ({pct}%), "
            f"{time.perf_counter() - self.start:.1f} s"
        )
        if self.tty:
            print("\r" + line, end="\n" if done >= self.total else "", file=sys.stderr, flush=True)
        elif pct // 25 > self.shown or done >= self.total:
            self.shown = pct // 25
            print(line, file=sys.stderr, flush=True)


class _Prepared(Dataset):
    def __init__(self, source: ImageSource, pre: Preprocessing) -> None:
        self.source, self.pre = source, pre

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.source.dataset[i]
        return self.pre.one(image), int(label)


@dataclass
class Encoded:
    features: np.ndarray  # N x K, the representation v
    labels: np.ndarray  # N (-1 where unknown)
    mask: np.ndarray | None = None  # N x K gate masks
    alpha: np.ndarray | None = None  # N x K gate probabilities


@torch.no_grad()
def encode_source(
    model: TrainedEncoder,
    source: ImageSource,
    batch_size: int = 256,
    num_workers: int = 0,
    gate: bool = False,
    progress: bool = True,
) -> Encoded:
    """Every image of ``source`` through ``model`` (eval mode, deterministic gate)."""
    if batch_size < 1:
        raise ValueError(f"--batch_size {batch_size} must be >= 1")
    loader = DataLoader(
        _Prepared(source, model.preprocessing), batch_size=batch_size, num_workers=num_workers
    )
    bar = Progress(len(source)) if progress else None
    feats, labels, masks, alphas, done = [], [], [], [], 0
    for x, y in loader:
        rep = model.represent(x, preprocessed=True)
        feats.append(rep.output.float().cpu())
        labels.append(y)
        if gate and rep.mask is not None and rep.alpha is not None:
            masks.append(rep.mask.float().cpu())
            alphas.append(rep.alpha.float().cpu())
        done += len(y)
        if bar:
            bar.update(done)
    return Encoded(
        torch.cat(feats).numpy(),
        torch.cat(labels).numpy().astype(np.int64),
        torch.cat(masks).numpy() if masks else None,
        torch.cat(alphas).numpy() if alphas else None,
    )


def source_from_args(model: Any, args: argparse.Namespace) -> ImageSource:
    """The image source the options of :func:`add_source_arguments` name."""
    return image_source(
        model.preprocessing,
        images=args.images,
        imagefolder=args.imagefolder,
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        limit=args.limit,
    )


def add_source_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--images", metavar="DIR", help="every image file under DIR (no labels)")
    group.add_argument(
        "--imagefolder", metavar="DIR", help="DIR/<class>/<image>: labels from the folder names"
    )
    group.add_argument(
        "--dataset", metavar="NAME", help="a dataset of the registry (digits, fashion-mnist, ...)"
    )
    parser.add_argument(
        "--split", default="test", choices=SPLITS, help="split of --dataset (test = val)"
    )
    parser.add_argument(
        "--data_dir", "--data-dir", help="where --dataset lives (default: the training run's)"
    )
    parser.add_argument("--limit", type=int, help="at most this many images (a fixed sample)")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=256)
    parser.add_argument("--num_workers", "--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")


def encode_main(argv: list[str]) -> int:
    """``bayesncl encode``."""
    parser = argparse.ArgumentParser(
        prog="bayesncl encode", description=__doc__, exit_on_error=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("model", help="export directory, RUN_DIR/checkpoints/last.ckpt or RUN_DIR")
    add_source_arguments(parser, required=True)
    parser.add_argument("--out", required=True, help="features file to write (.npz)")
    args = parser.parse_args(argv)
    model = load(args.model, args.device)
    source = source_from_args(model, args)
    print(f"encoding {source.description} with {describe(model)}", file=sys.stderr)
    enc = encode_source(model, source, args.batch_size, args.num_workers)
    arrays: dict[str, np.ndarray] = {"features": enc.features, **source.ids()}
    if source.has_labels:
        arrays["labels"] = enc.labels
    if source.classes:
        arrays["classes"] = np.asarray(source.classes, dtype=str)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: features {enc.features.shape[0]} x {enc.features.shape[1]}")
    return 0
