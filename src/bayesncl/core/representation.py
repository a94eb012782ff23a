"""What one pass through the representation path produces (a leaf module: objectives, gates and
the path all use it, so none of them has to import another to name it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Representation:
    """Every tensor of one pass through the path (rows = samples x views)."""

    h: Tensor  # backbone features
    z: Tensor  # projector output
    features: Tensor  # phi(z), after top-k; not normalised
    normalized: Tensor  # z_hat = normalize(features)
    output: Tensor  # v = normalize(z_hat * mask), or z_hat without a gate: what the loss sees
    logits: Tensor | None = field(default=None)  # gate logits l
    alpha: Tensor | None = field(default=None)  # sigmoid(l / T)
    mask: Tensor | None = field(default=None)  # the gate mask m
