"""Plain per-dimension loop implementations in the style of the official code (spec §2.2-2.5).

Kept as the test oracle for the vectorised metrics and as the baseline of the metrics benchmark.
Slow on purpose: do not use them for real evaluation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def loop_class_consistency(features: Tensor, labels: Tensor, eps: float = 1e-5) -> float:
    keep = features.abs().sum(0) > 0
    f = torch.nn.functional.normalize(features.float(), dim=1)
    rates = []
    for k in range(f.shape[1]):
        if not keep[k]:
            continue
        hit = labels[f[:, k].abs() > eps]
        if hit.numel() == 0:
            continue
        rates.append(torch.bincount(hit).max().item() / hit.numel())
    # the official mean of an empty list: NaN (spec §2.2)
    return sum(rates) / len(rates) if rates else math.nan


def loop_semantic_entropy(
    features: Tensor, labels: Tensor, variant: str = "sum", eps: float = 1e-5
) -> float:
    classes = labels.unique().tolist()
    values = []
    for k in range(features.shape[1]):
        col = features[:, k].abs().float()
        if col.sum() <= eps:
            continue
        weights = []
        for c in classes:
            sel = labels == c
            if variant == "sum":
                weights.append(col[sel].sum().item())
            elif variant == "mean":
                weights.append(col[sel].sum().item() / (sel.sum().item() + 1e-5))
            else:
                weights.append((col[sel] > eps).sum().item())
        total = sum(weights)
        if total < 1e-5:  # official: "dimensions with total mass < 1e-5 skipped" (spec §2.3)
            continue
        h = 0.0
        for w in weights:
            p = w / total
            if p > 1e-5:
                h -= p * math.log(p)
        values.append(h)
    return sum(values) / len(values) if values else 0.0


def loop_orthogonality(features: Tensor) -> float:
    f = features.double()
    f = f[:, f.abs().sum(0) > 0]
    d = f.shape[1]
    cols = [f[:, i] / f[:, i].norm() for i in range(d)]
    total = 0.0
    for i in range(d):
        for j in range(d):
            if i != j:
                total += abs(float(cols[i] @ cols[j]))
    return total / (d * (d - 1))


def loop_effective_rank(features: Tensor, log_eps: float = 1e-6) -> float:
    """Official spectral entropy (spec §2.7): p = s / sum(s) over the singular values of F,
    H = -sum_k p_k ln(p_k + 1e-6)."""
    s = torch.linalg.svdvals(features.double())
    p = s / s.sum()
    return float(-(p * torch.log(p + log_eps)).sum())
