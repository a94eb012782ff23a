"""Feature selection by expected activation (the NCL paper's Table 1; ncl-extras-spec §7).

Keep ``keep`` of the K projector dimensions, chosen on the training split by a criterion of
:data:`CRITERIA`:

* ``activation``: expected activation *after* the non-negativity, the mean over samples of the
  row-normalised phi(z) ("EA w/ ReLU", the paper's method; the official code ranks by
  sum_i normalize(ReLU(z_i)));
* ``preactivation``: the same on the row-normalised z before the map ("EA w/o ReLU");
* ``random``: a seeded random subset; ``all``: every dimension (the reference row).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from bayesncl.core.norm import normalize_rows


def _top(score: Tensor, keep: int) -> Tensor:
    return torch.sort(torch.topk(score, keep).indices).values


def by_activation(z: Tensor, features: Tensor, keep: int, seed: int) -> Tensor:
    return _top(normalize_rows(features).mean(0), keep)


def by_preactivation(z: Tensor, features: Tensor, keep: int, seed: int) -> Tensor:
    return _top(normalize_rows(z).mean(0), keep)


def at_random(z: Tensor, features: Tensor, keep: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(z.shape[1], generator=g)[:keep]).values


def every(z: Tensor, features: Tensor, keep: int, seed: int) -> Tensor:
    return torch.arange(z.shape[1])


#: criterion name -> (z, phi(z), keep, seed) -> kept dimension indices (sorted)
CRITERIA: dict[str, Callable[[Tensor, Tensor, int, int], Tensor]] = {
    "all": every,
    "random": at_random,
    "preactivation": by_preactivation,
    "activation": by_activation,
}


def select_dimensions(
    z: Tensor, features: Tensor, keep: int, criterion: str = "activation", seed: int = 0
) -> Tensor:
    """Indices of the dimensions kept by ``criterion`` (see the module docstring)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r}; use one of: {', '.join(CRITERIA)}")
    if not 1 <= keep <= z.shape[1]:
        raise ValueError(f"keep={keep} must be in 1..{z.shape[1]} (the representation width)")
    return CRITERIA[criterion](z, features, keep, seed)
