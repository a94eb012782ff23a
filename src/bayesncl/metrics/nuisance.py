"""Metrics with respect to a second label: a *nuisance* such as the background of an image.

Given the evaluated matrix F (n x d), the class labels y and a nuisance label b of every sample
(e.g. the texture of :mod:`bayesncl.data.scenes`), these say how much of the representation
stands for the nuisance rather than the class (issue "Where the gate matters", item 2):

* consistency and H_s with respect to b: the class metrics (reference spec §2.2-2.3) with b in
  place of y;
* per dimension k, the purity for a label: the share of k's active samples (|F_hat_ik| > eps,
  as consistency counts them) that carry k's majority label, and its *lift* over chance,
  (purity - f) / (1 - f) with f the overall share of that label among all samples (a dimension
  that fires on a random 80 % of images reads purity 0.8 for a label of frequency 0.8, lift 0);
* the share of active dimensions dominated by the nuisance: nuisance lift > class lift;
* with a gate mask, its open rate on nuisance-dominated dimensions and on the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bayesncl.metrics.interpretability import (
    class_tables,
    consistency_from_counts,
    semantic_entropy,
)


@dataclass
class DimensionPurity:
    """Per dimension: purity, its majority label, lift over chance, and active-sample count."""

    purity: Tensor  # (d,), NaN where the dimension has no active sample
    majority: Tensor  # (d,) long
    lift: Tensor  # (d,), (purity - f_majority) / (1 - f_majority); NaN where inactive
    active: Tensor  # (d,) number of active samples


def dimension_purity(
    features: Tensor, labels: Tensor, num_labels: int | None = None, eps: float = 1e-5
) -> DimensionPurity:
    """Purity of every dimension for ``labels`` (see the module docstring)."""
    labels = labels.long()
    c = int(labels.max()) + 1 if num_labels is None else num_labels
    counts = class_tables(features, labels, c, eps)[0]
    active = counts.sum(1)
    best, majority = counts.max(1)
    purity = torch.where(active > 0, best / active.clamp_min(1), torch.nan)
    share = torch.bincount(labels, minlength=c).float() / max(len(labels), 1)
    f = share[majority]
    lift = torch.where(f < 1, (purity - f) / (1 - f).clamp_min(1e-12), torch.zeros_like(f))
    lift = torch.where(active > 0, lift, torch.nan)
    return DimensionPurity(purity, majority, lift, active)


def nuisance_dominated(class_purity: DimensionPurity, nuisance_purity: DimensionPurity) -> Tensor:
    """(d,) bool: active dimensions whose nuisance lift exceeds their class lift."""
    active = class_purity.active > 0
    return active & (nuisance_purity.lift > class_purity.lift)


def nuisance_report(
    features: Tensor,
    labels: Tensor,
    nuisance: Tensor,
    num_classes: int | None = None,
    num_nuisance: int | None = None,
    mask: Tensor | None = None,
    eps: float = 1e-5,
) -> dict[str, float]:
    """``nuisance_consistency``, ``nuisance_entropy_sum`` (H_s w.r.t. the nuisance),
    ``class_lift`` / ``nuisance_lift`` (means over active dimensions), ``nuisance_dim_share``
    (share of active dimensions dominated by the nuisance), ``nuisance_dims``; with a gate
    ``mask`` (n x d) also ``gate_open_nuisance_dims`` and ``gate_open_class_dims`` (mean open
    rate over those dimensions; NaN when there are none)."""
    nuisance = nuisance.long()
    nb = int(nuisance.max()) + 1 if num_nuisance is None else num_nuisance
    counts = class_tables(features, nuisance, nb, eps)[0]
    cls = dimension_purity(features, labels, num_classes, eps)
    nui = dimension_purity(features, nuisance, nb, eps)
    active = cls.active > 0
    dominated = nuisance_dominated(cls, nui)
    n_active = int(active.sum())
    out = {
        "nuisance_consistency": float(consistency_from_counts(counts)),
        "nuisance_entropy_sum": float(semantic_entropy(features, nuisance, "sum", nb, eps)),
        "class_lift": float(cls.lift[active].mean()) if n_active else float("nan"),
        "nuisance_lift": float(nui.lift[active].mean()) if n_active else float("nan"),
        "nuisance_dims": int(dominated.sum()),
        "nuisance_dim_share": float(dominated.sum() / n_active) if n_active else float("nan"),
        "nuisance_chance": float(torch.bincount(nuisance, minlength=nb).max() / len(nuisance)),
    }
    if mask is not None:
        open_rate = mask.float().mean(0)
        others = active & ~dominated
        out["gate_open_nuisance_dims"] = (
            float(open_rate[dominated].mean()) if dominated.any() else float("nan")
        )
        out["gate_open_class_dims"] = (
            float(open_rate[others].mean()) if others.any() else float("nan")
        )
    return out
