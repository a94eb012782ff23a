"""Feature extraction through the model's one representation path (reference spec §2.1)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from bayesncl.models.encoder import Encoder

BNMode = Literal["eval", "train"]


@dataclass
class Extracted:
    """Everything the metrics need, one row per sample."""

    h: Tensor  # backbone features (linear probe, kNN)
    features: Tensor  # phi(z) after top-k, unnormalised (feature selection)
    output: Tensor  # the evaluated representation v (interpretability metrics)
    labels: Tensor
    alpha: Tensor | None = None  # gate probabilities
    mask: Tensor | None = None  # gate masks
    z: Tensor | None = None  # projector output before the non-negativity (feature selection)


@torch.no_grad()
def extract(
    encoder: Encoder, loader: DataLoader, bn_mode: BNMode = "eval", soft_gate: bool = False
) -> Extracted:
    """Run ``encoder.represent`` over ``loader`` of (image, label) batches.

    ``bn_mode="eval"`` (default) uses BatchNorm running statistics. ``"train"`` reproduces the
    official evaluation, which never calls ``eval()`` so BatchNorm normalises with each batch's
    own statistics (spec §5 quirk 1; results then depend on batch size and order); the gate stays
    deterministic either way. The model passed in is not modified.
    """
    if bn_mode not in ("eval", "train"):
        raise ValueError(f"bn_mode={bn_mode!r}; use 'eval' or 'train'")
    model = encoder
    if bn_mode == "train":
        model = copy.deepcopy(encoder)
    model.eval()
    if bn_mode == "train":
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.train()
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {
        k: [] for k in ("h", "features", "output", "labels", "alpha", "mask", "z")
    }
    for x, y in loader:
        rep = model.represent(x.to(device), soft_gate=soft_gate)
        parts["h"].append(rep.h.float().cpu())
        parts["features"].append(rep.features.float().cpu())
        parts["output"].append(rep.output.float().cpu())
        parts["labels"].append(y.cpu())
        parts["z"].append(rep.z.float().cpu())
        if rep.alpha is not None and rep.mask is not None:
            parts["alpha"].append(rep.alpha.float().cpu())
            parts["mask"].append(rep.mask.float().cpu())
    cat = {k: torch.cat(v) if v else None for k, v in parts.items()}
    return Extracted(**cat)  # type: ignore[arg-type]
