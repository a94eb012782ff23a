"""Out-of-distribution evaluation (``bayesncl evaluate --ood``; ncl-extras-spec §5.3).

The protocol of the NCL paper's out-of-distribution table, mirrored: one linear probe trained
on the clean training features h, then scored without retraining on shifted versions of the
first ``limit`` test images (:mod:`bayesncl.data.shifts`): the 14 corruptions at each severity
(their mean is "Corruption"), the Sobel sketch and the stylized-like set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.shifts import CORRUPTIONS, FAMILIES, shifted
from bayesncl.data.splits import Transformed
from bayesncl.evaluate.extract import Extracted, extract
from bayesncl.evaluate.probe import fit_linear_probe
from bayesncl.models.encoder import Encoder


class _Items(Dataset):
    """Shifted images as items of the clean split's kind: (1 x H x W uint8 tensor, label) for
    grayscale datasets, (PIL image, label) for RGB ones."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, as_pil: bool) -> None:
        self.images, self.labels, self.as_pil = images, labels, as_pil

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        img = self.images[i]
        if self.as_pil:
            return Image.fromarray(img[..., 0] if img.shape[2] == 1 else img), int(self.labels[i])
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(self.labels[i])


def as_arrays(ds: Dataset, limit: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The first ``limit`` items of a raw split as (N x H x W x C uint8, labels, were PIL)."""
    images, labels, as_pil = [], [], False
    for i in range(min(limit, len(ds))):  # type: ignore[arg-type]
        img, y = ds[i]
        if isinstance(img, Image.Image):
            as_pil = True
            a = np.asarray(img)
            images.append(a[..., None] if a.ndim == 2 else a)
        else:
            images.append(np.asarray(img).transpose(1, 2, 0))
        labels.append(int(y))
    return np.stack(images).astype(np.uint8), np.asarray(labels), as_pil


def ood_metrics(
    encoder: Encoder,
    train: Extracted,
    val_raw: Dataset,
    transform: Callable[[Any], Any],
    num_classes: int,
    limit: int = 1000,
    severities: tuple[int, ...] = (1, 2, 3, 4, 5),
    epochs: int = 100,
    batch_size: int = 512,
    seed: int = 0,
    table: str = "cifar",
) -> dict[str, Any]:
    """``ood_clean_top1``, ``ood_corruption_top1`` (mean over types x severities, with the
    corruption parameters of ``table``: ``cifar`` or ``imagenet``, see ``shifted``),
    ``ood_<family>_top1``, ``ood_sketch_top1``, ``ood_stylized_top1``, the drops from clean
    (``ood_*_drop``), ``ood_detail`` (``"type@severity": top-1``) and the settings."""
    probe = fit_linear_probe(train.h, train.labels, num_classes, epochs)
    images, labels, as_pil = as_arrays(val_raw, limit)
    y = torch.as_tensor(labels)

    def top1(imgs: np.ndarray) -> float:
        ds = Transformed(_Items(imgs, labels, as_pil), transform)
        h = extract(encoder, DataLoader(ds, batch_size=batch_size)).h
        return float((probe(h).argmax(1) == y).float().mean())

    clean = top1(images)
    detail = {
        f"{kind}@{s}": top1(shifted(images, labels, kind, s, seed, table))
        for kind in CORRUPTIONS
        for s in severities
    }
    out: dict[str, Any] = {"ood_clean_top1": clean, "ood_limit": len(labels)}
    out["ood_corruption_top1"] = float(np.mean(list(detail.values())))
    for family, kinds in FAMILIES.items():
        vals = [v for k, v in detail.items() if k.split("@")[0] in kinds]
        out[f"ood_{family}_top1"] = float(np.mean(vals))
    out["ood_sketch_top1"] = top1(shifted(images, labels, "sketch", 1, seed))
    out["ood_stylized_top1"] = top1(shifted(images, labels, "stylized", 1, seed))
    for name in ("corruption", "sketch", "stylized"):
        out[f"ood_{name}_drop"] = clean - out[f"ood_{name}_top1"]
    out["ood_detail"] = detail
    out["ood_severities"] = list(severities)
    out["ood_table"] = table
    return out
