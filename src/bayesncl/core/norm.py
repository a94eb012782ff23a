"""Row normalisation shared by the representation path and the objectives."""

from __future__ import annotations

import torch
from torch import Tensor


def normalize_rows(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Row-wise L2 normalisation x / ||x||, with zero rows mapped to zero *and no gradient*.

    ``F.normalize`` (the official choice) divides a zero row by eps = 1e-12, so its backward
    multiplies the incoming gradient by 1e12. That happens in the official code whenever every
    gate of a row is closed, or a rep_relu row is all negative (rep_relu passes GELU's gradient at
    zero output). Values are identical to ``F.normalize`` except for rows with 0 < ||x|| <= eps.
    A row with a NaN or Inf stays non-finite (``x * 0``), so a diverged model cannot hide behind
    zero rows and a finite loss.
    """
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm > eps, x / norm.clamp_min(eps), x * 0)
