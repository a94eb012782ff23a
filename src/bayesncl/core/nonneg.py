"""Non-negativity maps phi applied to the projector output z (reference spec §1.5).

NCL turns SimCLR into a non-negative method by one map on z before normalisation. Every map is
looked up by name in :data:`NONNEG_MAPS`, so configs, presets and checkpoints store a string.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

NonNegMap = Callable[[Tensor], Tensor]


def rep_relu(z: Tensor) -> Tensor:
    """Reparameterised ReLU: ReLU in the forward pass, GELU's gradient in the backward pass.

    value = GELU(z) - sg(GELU(z)) + sg(ReLU(z)), so d/dz = GELU'(z) (spec §1.5; NCL's default on
    CIFAR). Negative pre-activations keep a gradient, which avoids dead units.
    """
    g = F.gelu(z)
    return g - g.detach() + F.relu(z).detach()


def identity(z: Tensor) -> Tensor:
    """No map: plain contrastive learning (CL)."""
    return z


def leaky_relu(z: Tensor) -> Tensor:
    """LeakyReLU with the official slope 0.01 (not non-negative; an ablation)."""
    return F.leaky_relu(z, 0.01)


NONNEG_MAPS: dict[str, NonNegMap] = {
    "identity": identity,
    "relu": F.relu,
    "rep_relu": rep_relu,
    "gelu": F.gelu,
    "leakyrelu": leaky_relu,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
}

#: maps whose output is >= 0 everywhere (gelu and leakyrelu are not).
NON_NEGATIVE = frozenset({"relu", "rep_relu", "softplus", "sigmoid", "exp"})


def get_nonneg(name: str) -> NonNegMap:
    """Return the map called ``name``; raise ``ValueError`` listing the valid names otherwise."""
    try:
        return NONNEG_MAPS[name]
    except KeyError:
        valid = ", ".join(sorted(NONNEG_MAPS))
        raise ValueError(
            f"nonneg={name!r} is not a known non-negativity map; use one of: {valid}"
        ) from None
