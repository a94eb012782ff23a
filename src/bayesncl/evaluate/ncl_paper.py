"""The NCL paper's evaluations of a frozen model (ncl-extras-spec §7, §8): feature selection as
in its Table 1 (linear probe, retrieval and transfer on K/4 kept dimensions, by criterion),
SEPIN@k on two augmented views, and the Fig. 3 consistency variants. The out-of-distribution
sets are in :mod:`bayesncl.evaluate.shifted`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from bayesncl.core.norm import normalize_rows
from bayesncl.data.augment import view_transform
from bayesncl.data.datasets import get_dataset_spec
from bayesncl.data.splits import EvalSplits, Transformed
from bayesncl.evaluate.extract import Extracted, extract
from bayesncl.evaluate.probe import linear_probe
from bayesncl.metrics.consistency_variants import consistency_rectified, consistency_top_m
from bayesncl.metrics.feature_selection import CRITERIA, select_dimensions
from bayesncl.metrics.retrieval import retrieval_precision
from bayesncl.metrics.separability import sepin_at_k
from bayesncl.models.encoder import Encoder


def consistency_variants(ex: Extracted, m: int = 200) -> dict[str, Any]:
    """``consistency_topm`` (top-m activated samples per dimension), ``consistency_rectified``
    (default consistency of max(v, 0)), on the evaluated v; the default stays ``consistency``."""
    return {
        "consistency_topm": float(consistency_top_m(ex.output, ex.labels, m)),
        "consistency_topm_m": m,
        "consistency_rectified": float(consistency_rectified(ex.output, ex.labels)),
    }


@torch.no_grad()
def transfer_features(
    encoder: Encoder, splits: EvalSplits, dataset: str = "digits"
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train z, train labels, test z, test labels) of another dataset through the frozen
    encoder: its images scaled to [0, 1], resized (bilinear) to the model's image size,
    repeated to its channels and normalised with the evaluated dataset's statistics."""
    spec = get_dataset_spec(dataset)
    mean = torch.tensor(splits.spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.spec.std).view(1, -1, 1, 1)
    encoder.eval()
    out = []
    for train in (True, False):
        ds = spec.load(train, Path("."), False)
        xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
        x = torch.stack([torch.as_tensor(v) for v in xs]).float() / 255.0
        x = F.interpolate(x, size=splits.image_size, mode="bilinear", align_corners=False)
        x = x.expand(-1, splits.spec.in_channels, -1, -1)
        x = (x - mean) / std
        z = torch.cat([encoder.represent(b).z.float() for b in x.split(512)])
        out += [z, torch.as_tensor(ys)]
    return out[0], out[1], out[2], out[3]


def feature_selection_table(
    train: Extracted,
    val: Extracted,
    num_classes: int,
    keep: int | None = None,
    epochs: int = 100,
    transfer: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Table 1: for each criterion, ``fs_<c>_lp`` (linear probe on the kept dims of z),
    ``fs_<c>_p10`` (retrieval precision@10 on them, cosine), ``fs_<c>_transfer`` (linear probe
    on the transfer dataset's z restricted to them) and the drops from ``all``."""
    if train.z is None or val.z is None:
        raise ValueError("feature selection needs z (the projector output): extract it again")
    k = train.z.shape[1]
    keep = keep or max(1, k // 4)
    out: dict[str, Any] = {"fs_keep": keep}
    for name in CRITERIA:
        idx = select_dimensions(train.z, train.features, keep, name, seed)
        out[f"fs_{name}_lp"] = linear_probe(
            train.z[:, idx], train.labels, val.z[:, idx], val.labels, num_classes, epochs=epochs
        )["top1"]
        out[f"fs_{name}_p10"] = retrieval_precision(
            normalize_rows(val.z[:, idx]), val.labels, (10,)
        )[10]
        if transfer is not None:
            tz, ty, vz, vy = transfer
            out[f"fs_{name}_transfer"] = linear_probe(tz[:, idx], ty, vz[:, idx], vy, epochs=epochs)["top1"]  # fmt: skip
    for name in CRITERIA:
        for col in ("lp", "p10", "transfer"):
            if f"fs_{name}_{col}" in out:
                out[f"fs_{name}_{col}_drop"] = out[f"fs_all_{col}"] - out[f"fs_{name}_{col}"]
    return out


def sepin(
    encoder: Encoder, splits: EvalSplits, val_raw: Dataset, samples: int = 1000,
    steps: int = 100, seed: int = 0, batch_size: int = 512,
) -> dict[str, Any]:  # fmt: skip
    """SEPIN@1/10/100/all of the evaluated v between two augmented views (the dataset's
    training augmentation, seeded) of the first ``samples`` test images."""
    s = splits.spec
    view = view_transform(s.augment, splits.image_size, s.mean, s.std)
    subset = Subset(val_raw, range(min(samples, len(val_raw))))  # type: ignore[arg-type]
    views = []
    for k in (1, 2):
        with torch.random.fork_rng():
            torch.manual_seed(seed * 1000 + k)
            loader = DataLoader(Transformed(subset, view), batch_size=batch_size)
            views.append(extract(encoder, loader).output)
    return sepin_at_k(views[0], views[1], steps=steps)
