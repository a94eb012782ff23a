"""Image retrieval over the most active dimensions (reference spec §2.6), vectorised and chunked."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def rank_dimensions(features: Tensor) -> Tensor:
    """Dimension indexes sorted by activation mass sum_i F_hat_ik of the row-normalised features,
    largest first (the official ranking for retrieval and feature selection)."""
    return torch.nn.functional.normalize(features.float(), dim=1).sum(0).argsort(descending=True)


def retrieval_precision(
    features: Tensor,
    labels: Tensor,
    ks: Sequence[int] = (1, 3, 5, 10),
    num_dims: int | None = None,
    chunk: int = 2048,
) -> dict[int, float]:
    """Precision@k of cosine-similarity retrieval, each sample querying all the others.

    With ``num_dims`` only the top-``num_dims`` dimensions by activation mass are used, rows
    re-normalised (spec §2.6). The query itself is excluded by index, not by dropping the first
    neighbour as the official code does (which is wrong for duplicate or zero rows).
    """
    f = torch.nn.functional.normalize(features.float(), dim=1)
    if num_dims is not None:
        f = torch.nn.functional.normalize(f[:, rank_dimensions(features)[:num_dims]], dim=1)
    n, kmax = f.shape[0], max(ks)
    if not 1 <= kmax < n:
        raise ValueError(f"retrieval k={kmax} needs 1 <= k < number of samples ({n})")
    hits = torch.zeros(kmax)
    labels = labels.to(f.device)
    for start in range(0, n, chunk):
        sim = f[start : start + chunk] @ f.T
        rows = torch.arange(sim.shape[0], device=f.device)
        sim[rows, rows + start] = -float("inf")
        nn_idx = sim.topk(kmax, dim=1).indices
        same = (labels[nn_idx] == labels[start : start + chunk, None]).float()
        hits += same.cumsum(1).sum(0).cpu()
    return {k: float(hits[k - 1] / (n * k)) for k in ks}
