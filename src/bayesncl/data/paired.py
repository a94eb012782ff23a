"""Paired (two-modality) data for MMNCL (ncl-extras-spec §4.3). A paired dataset yields
``(x, pair, label)``: the first modality, its partner (a tensor or a caption string) and the
class label (-1 when unknown).

* :class:`PairedCSV` reads (image path, caption) rows from a CSV or JSONL file.
* :func:`fmnist_edge_pairs` (M1): each Fashion-MNIST image with its Sobel edge map.
* :func:`fmnist_caption_pairs` (M2): each image with a caption built from the class name and
  attributes measured on the image. The caption contains the label, so zero-shot accuracy on it
  tests plumbing, not CLIP-scale claims (spec §4.3).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from bayesncl.data.edges import as_float_images, sobel_edges
from bayesncl.data.errors import DataFileError

#: one- or two-word class names used in captions (index = Fashion-MNIST label)
FMNIST_CAPTION_NAMES = (
    "top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip

#: pixels above this (of 255) are the garment when measuring caption attributes
FOREGROUND_THRESHOLD = 25


@dataclass(frozen=True)
class PairRow:
    """One row of a pairs file: the image's absolute path, its caption, label (-1: none) and the
    row's line number in the file (for error messages)."""

    image: Path
    caption: str
    label: int
    line: int


def _field(record: dict[str, Any], key: str, where: str, what: str) -> Any:
    if key not in record:
        keys = ", ".join(map(str, record)) or "none"
        raise DataFileError(f"{where}: no {what} {key!r} (has: {keys}); set the {what} name")
    return record[key]


def read_pairs(
    path: str | Path,
    image_key: str = "image",
    caption_key: str = "caption",
    label_key: str | None = None,
    check_files: bool = True,
) -> list[PairRow]:
    """Rows of a ``.csv`` (header row) or ``.jsonl`` (one JSON object per line) pairs file.

    Image paths are relative to the file's folder (absolute ones are kept). Errors name the file
    and line: a missing column/key, bad JSON, an empty caption, a non-integer label, and (with
    ``check_files``) a missing image (:class:`FileNotFoundError`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            for key, what in ((image_key, "image"), (caption_key, "caption"), (label_key, "label")):
                if key is not None and key not in columns:
                    raise DataFileError(
                        f"{path} line 1: no {what} column {key!r} (columns: "
                        f"{', '.join(columns) or 'none'}); set the {what} column name"
                    )
            records = [(reader.line_num, dict(row)) for row in reader]
    elif suffix in (".jsonl", ".ndjson"):
        records = []
        with open(path, encoding="utf-8") as f:
            for number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as err:
                    raise DataFileError(f"{path} line {number}: not valid JSON ({err})") from None
                if not isinstance(record, dict):
                    raise DataFileError(f"{path} line {number}: expected a JSON object")
                records.append((number, record))
    else:
        raise DataFileError(f"pairs file {path}: unknown format {suffix!r}; use .csv or .jsonl")
    rows = []
    for number, record in records:
        where = f"{path} line {number}"
        kind = "column" if suffix == ".csv" else "key"
        image = Path(str(_field(record, image_key, where, kind)))
        caption = _field(record, caption_key, where, kind)
        if not isinstance(caption, str) or not caption.strip():
            raise DataFileError(f"{where}: the caption ({caption_key!r}) is empty")
        label = -1
        if label_key is not None:
            raw = _field(record, label_key, where, kind)
            try:
                label = int(raw)
            except (TypeError, ValueError):
                raise DataFileError(f"{where}: label {raw!r} is not an integer") from None
        image = image if image.is_absolute() else path.parent / image
        if check_files and not image.is_file():
            raise FileNotFoundError(f"{where}: image {image} does not exist")
        rows.append(PairRow(image, caption, label, number))
    if not rows:
        raise DataFileError(f"pairs file {path} has no rows")
    return rows


def pil_to_tensor(image: Image.Image) -> Tensor:
    """PIL image -> float tensor (C, H, W) in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class PairedCSV(Dataset):
    """(image, caption) pairs from a CSV or JSONL file (format by suffix, see :func:`read_pairs`).

    Items ``(x, pair, label)``: ``x`` = ``transform(image)`` (default: a float tensor in [0, 1]),
    the image converted to ``mode`` ("L" or "RGB"); ``pair`` = the caption, or
    ``tokenizer(caption)`` when a tokenizer (e.g. ``bayesncl.models.text.Tokenizer``) is given;
    ``label`` from ``label_key`` or -1.
    """

    def __init__(
        self,
        path: str | Path,
        image_key: str = "image",
        caption_key: str = "caption",
        label_key: str | None = None,
        mode: str = "RGB",
        transform: Callable[[Image.Image], Any] | None = None,
        tokenizer: Callable[[str], Any] | None = None,
    ) -> None:
        if mode not in ("L", "RGB"):
            raise ValueError(f"mode={mode!r}; use 'L' or 'RGB'")
        self.path = Path(path)
        self.rows = read_pairs(path, image_key, caption_key, label_key)
        self.mode, self.transform, self.tokenizer = mode, transform or pil_to_tensor, tokenizer

    @property
    def captions(self) -> list[str]:
        return [row.caption for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        row = self.rows[i]
        try:
            with open(row.image, "rb") as f:
                image = Image.open(f).convert(self.mode)
        except OSError as err:
            raise DataFileError(
                f"{self.path} line {row.line}: cannot read image {row.image} ({err})"
            ) from None
        pair = row.caption if self.tokenizer is None else self.tokenizer(row.caption)
        return self.transform(image), pair, row.label


class PairedTensors(Dataset):
    """In-memory pairs: items ``(x[i], pair[i], labels[i])``; ``pair`` is a tensor or a list of
    captions, mapped through ``pair_transform`` when given (e.g. a tokenizer)."""

    def __init__(
        self,
        x: Tensor,
        pair: Tensor | Sequence[str],
        labels: Tensor | None = None,
        pair_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        labels = torch.full((len(x),), -1, dtype=torch.long) if labels is None else labels
        if not len(x) == len(pair) == len(labels):
            raise ValueError(
                f"paired data of unequal length: x {len(x)}, pair {len(pair)}, labels {len(labels)}"
            )
        self.x, self.pair, self.labels = x, pair, torch.as_tensor(labels, dtype=torch.long)
        self.pair_transform = pair_transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Any, int]:
        pair = self.pair[i]
        if self.pair_transform is not None:
            pair = self.pair_transform(pair)
        return self.x[i], pair, int(self.labels[i])


def fmnist_edge_pairs(images: Tensor | np.ndarray, labels: Tensor | None = None) -> PairedTensors:
    """M1 (spec §4.3): each image (1, 28, 28) paired with its Sobel edge map (deterministic)."""
    x = as_float_images(images)
    return PairedTensors(x, sobel_edges(x[:, 0]), labels)


@dataclass(frozen=True)
class CaptionThresholds:
    """Medians that split the attributes: garment intensity (dark/light) and area (small/large)."""

    intensity: float
    area: float


def caption_measurements(images: Tensor | np.ndarray) -> dict[str, Tensor]:
    """Per image: ``intensity`` (mean of the garment pixels, in [0, 1]), ``area`` (garment pixel
    count) and ``aspect`` (bounding-box width / height; 0 for an empty image). The garment is
    the pixels above ``FOREGROUND_THRESHOLD``/255."""
    x = as_float_images(images)[:, 0]
    fg = x > FOREGROUND_THRESHOLD / 255
    area = fg.sum(dim=(1, 2)).float()
    intensity = (x * fg).sum(dim=(1, 2)) / area.clamp_min(1)
    rows, cols = fg.any(dim=2), fg.any(dim=1)

    def extent(mask: Tensor) -> Tensor:
        index = torch.arange(mask.shape[1]).expand_as(mask)
        first = torch.where(mask, index, mask.shape[1]).min(dim=1).values
        last = torch.where(mask, index, -1).max(dim=1).values
        return (last - first + 1).clamp_min(0).float()

    height, width = extent(rows), extent(cols)
    return {"intensity": intensity, "area": area, "aspect": width / height.clamp_min(1)}


def caption_thresholds(images: Tensor | np.ndarray) -> CaptionThresholds:
    """The medians of ``images`` (compute them on the training split, reuse them for the test)."""
    m = caption_measurements(images)
    # quantile, not Tensor.median: the latter returns the lower middle value of an even count
    return CaptionThresholds(float(m["intensity"].quantile(0.5)), float(m["area"].quantile(0.5)))


def fmnist_captions(
    images: Tensor | np.ndarray,
    labels: Tensor | Sequence[int],
    thresholds: CaptionThresholds | None = None,
    class_names: Sequence[str] = FMNIST_CAPTION_NAMES,
) -> list[str]:
    """ "a {dark|light} {small|large} {wide|tall} {class name}" per image: dark when the garment's
    mean intensity is below the median, small when its area is below the median, wide when its
    bounding box is wider than tall (``thresholds`` default: the medians of ``images``)."""
    m = caption_measurements(images)
    t = thresholds or caption_thresholds(images)
    labels = [int(y) for y in labels]
    if len(labels) != len(m["area"]):
        raise ValueError(f"{len(labels)} labels for {len(m['area'])} images")
    bad = [y for y in labels if not 0 <= y < len(class_names)]
    if bad:
        raise ValueError(f"labels {sorted(set(bad))} have no class name ({len(class_names)} names)")
    return [
        f"a {'dark' if i < t.intensity else 'light'} {'small' if a < t.area else 'large'} "
        f"{'wide' if r > 1 else 'tall'} {class_names[y]}"
        for i, a, r, y in zip(
            m["intensity"].tolist(), m["area"].tolist(), m["aspect"].tolist(), labels, strict=True
        )
    ]


def caption_prompts(class_name: str) -> list[str]:
    """Zero-shot prompts of a class in M2's caption grammar: the 8 attribute combinations
    ("a dark small wide top", ...), whose text codes are averaged into the class's prototype."""
    return [
        f"a {tone} {size} {shape} {class_name}"
        for tone in ("dark", "light")
        for size in ("small", "large")
        for shape in ("wide", "tall")
    ]


def fmnist_caption_pairs(
    images: Tensor | np.ndarray,
    labels: Tensor | Sequence[int],
    thresholds: CaptionThresholds | None = None,
    tokenizer: Callable[[str], Any] | None = None,
) -> PairedTensors:
    """M2 (spec §4.3): each image (1, 28, 28) paired with :func:`fmnist_captions`' caption
    (a string, or ``tokenizer(caption)``)."""
    x = as_float_images(images)
    captions = fmnist_captions(x[:, 0], labels, thresholds)
    return PairedTensors(x, captions, torch.as_tensor(list(map(int, labels))), tokenizer)


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class PairedSource:
    """Where and how a paired dataset is read (the ``data`` section of a multimodal config).

    ``pairs_file`` / ``val_pairs_file``: the CSV/JSONL files of ``pairs`` (image paths relative
    to each file); ``image_key``, ``caption_key``, ``label_key``: their columns; ``mode``: "L" or
    "RGB"; ``image_size``: the square size images are resized to (None: as stored, all equal).
    """

    data_dir: Path = Path("data")
    pairs_file: str | None = None
    val_pairs_file: str | None = None
    image_key: str = "image"
    caption_key: str = "caption"
    label_key: str | None = None
    mode: str = "RGB"
    image_size: int | None = None


@dataclass(frozen=True)
class PairedSpec:
    """A paired dataset of the registry: its partner modality (``image``: a tensor of the same
    kind, ``text``: a caption string), class names (None: unknown) and its loader
    ``load(train, source) -> Dataset`` of ``(x, pair, label)`` items."""

    name: str
    pair: str
    load: Callable[[bool, PairedSource], Dataset]
    classes: tuple[str, ...] | None
    description: str


def _fmnist(train: bool, source: PairedSource) -> tuple[Tensor, Tensor]:
    from bayesncl.data.datasets import get_dataset_spec

    ds = get_dataset_spec("fashion-mnist").load(train, source.data_dir, False)
    return ds.images, torch.as_tensor(ds.targets)  # type: ignore[attr-defined]


def _load_edges(train: bool, source: PairedSource) -> Dataset:
    images, labels = _fmnist(train, source)
    return fmnist_edge_pairs(images, labels)


def _load_captions(train: bool, source: PairedSource) -> Dataset:
    images, labels = _fmnist(train, source)
    # the attribute thresholds are the training split's medians, for both splits
    thresholds = caption_thresholds(images if train else _fmnist(True, source)[0])
    return fmnist_caption_pairs(images, labels, thresholds)


def _load_csv(train: bool, source: PairedSource) -> Dataset:
    key = "pairs_file" if train else "val_pairs_file"
    path = source.pairs_file if train else (source.val_pairs_file or source.pairs_file)
    if path is None:
        raise ValueError(
            f"data.dataset=pairs reads image-caption pairs from files: set data.{key} (a .csv "
            "with a header row or a .jsonl, one pair per row)"
        )
    transform = None
    if source.image_size is not None:
        size = source.image_size

        def transform(image: Image.Image) -> Tensor:
            return pil_to_tensor(image.resize((size, size), Image.BILINEAR))

    return PairedCSV(
        path,
        source.image_key,
        source.caption_key,
        source.label_key,
        mode=source.mode,
        transform=transform,
    )


PAIRED_DATASETS: dict[str, PairedSpec] = {
    spec.name: spec
    for spec in (
        PairedSpec(
            "fmnist-edges",
            "image",
            _load_edges,
            FMNIST_CAPTION_NAMES,
            "M1: each Fashion-MNIST image with its Sobel edge map",
        ),
        PairedSpec(
            "fmnist-captions",
            "text",
            _load_captions,
            FMNIST_CAPTION_NAMES,
            "M2: each Fashion-MNIST image with a caption of its class and measured attributes "
            "(the caption contains the label)",
        ),
        PairedSpec("pairs", "text", _load_csv, None, "your image-caption pairs (CSV or JSONL)"),
    )
}


def get_paired_spec(name: str) -> PairedSpec:
    """The paired dataset ``name`` of :data:`PAIRED_DATASETS` (an error lists them)."""
    if name not in PAIRED_DATASETS:
        raise ValueError(
            f"data.dataset={name!r} is not a paired dataset; use one of: "
            f"{', '.join(PAIRED_DATASETS)}"
        )
    return PAIRED_DATASETS[name]


def captions_of(ds: Dataset) -> list[str]:
    """The caption of every item of a paired dataset with text pairs (through ``Subset``)."""
    from torch.utils.data import Subset

    if isinstance(ds, Subset):
        inner = captions_of(ds.dataset)
        return [inner[int(i)] for i in ds.indices]
    if isinstance(ds, PairedCSV):
        return ds.captions
    if isinstance(ds, PairedTensors) and not isinstance(ds.pair, Tensor):
        return list(ds.pair)
    raise ValueError(f"{type(ds).__name__} has no captions (its pairs are not text)")


def pair_labels(ds: Dataset) -> Tensor:
    """The label of every item of a paired dataset (-1: unknown), without reading images."""
    from torch.utils.data import Subset

    if isinstance(ds, Subset):
        return pair_labels(ds.dataset)[torch.as_tensor(list(ds.indices), dtype=torch.long)]
    if isinstance(ds, PairedCSV):
        return torch.tensor([row.label for row in ds.rows], dtype=torch.long)
    if isinstance(ds, PairedTensors):
        return ds.labels
    return torch.tensor([int(ds[i][2]) for i in range(len(ds))], dtype=torch.long)  # type: ignore[arg-type]
