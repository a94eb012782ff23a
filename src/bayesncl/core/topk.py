"""Per-row top-k mask (reference spec §1.6, the NCL+TopK baseline of the BayesNCL paper)."""

from __future__ import annotations

import torch
from torch import Tensor


def check_topk(k: int, dim: int) -> None:
    """Raise ``ValueError`` unless ``1 <= k <= dim`` (the official default k=0 zeroes everything)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= dim:
        raise ValueError(f"topk_k={k!r} must be an integer in 1..{dim} (the feature dimension K)")


def topk_mask(z: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest entries of each row of ``z`` and zero the rest.

    The 0/1 selection is a constant, so gradient flows only through the kept entries. Ties are
    broken by ``torch.topk``. If fewer than k entries are positive, zeros are "kept" (no effect).
    """
    check_topk(k, z.shape[-1])
    if k == z.shape[-1]:
        return z
    idx = z.detach().topk(k, dim=-1).indices
    keep = torch.zeros_like(z).scatter_(-1, idx, 1.0)
    return z * keep
