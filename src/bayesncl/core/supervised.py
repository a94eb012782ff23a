"""Supervised non-negative cross-entropy (NCE) of the NCL paper (ncl-extras-spec §2).

CE is a special contrastive loss whose "positive" of a sample is its class weight w_y; NCE carries
NCL's non-negativity to both sides of that inner product (spec §2.2: on a ReLU-terminated backbone
the features are already >= 0, so NCE differs from CE only if the class weights are rectified too):

    L_NCE(f, W) = -E log softmax_y( sigma_+(f(x)) . sigma_+(W)^T + b ),  b = 0 by default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bayesncl.core.losses import LossTerms
from bayesncl.core.nonneg import get_nonneg
from bayesncl.core.objectives import Batch, Objective


def nonneg_cross_entropy(
    features: Tensor,
    weight: Tensor,
    labels: Tensor,
    *,
    feature_map: str = "relu",
    weight_map: str = "relu",
    bias: Tensor | None = None,
) -> Tensor:
    """CE(sigma_f(features) @ sigma_w(weight)^T + bias, labels) (spec §2.2).

    ``feature_map`` / ``weight_map`` are names in ``NONNEG_MAPS``; ``identity`` on both gives the
    plain cross-entropy of a bias-free linear classifier (``weight`` is C x K).
    """
    logits = get_nonneg(feature_map)(features) @ get_nonneg(weight_map)(weight).T
    if bias is not None:
        logits = logits + bias
    return F.cross_entropy(logits.float(), labels)


class NCEObjective(Objective):
    """Supervised (non-negative) cross-entropy on the representation ``rep.features``.

    The features are phi(z) of the method (``nonneg``: ``relu`` for NCE, ``identity`` for CE),
    times the gate mask if there is a gate. The class weights W (C x K) belong to the objective
    and are mapped by ``weight_map`` (``relu`` for NCE, ``identity`` for CE). Term ``ce``.
    """

    min_views = 1
    needs_labels = True

    def __init__(
        self,
        *,
        tau: float,
        out_dim: int,
        num_classes: int | None = None,
        weight_map: str = "relu",
        bias: bool = False,
    ) -> None:
        super().__init__(tau=tau, out_dim=out_dim, num_classes=num_classes)
        if not num_classes:
            raise ValueError("objective 'nce' needs the number of classes (data.num_classes)")
        get_nonneg(weight_map)
        self.weight_map = weight_map
        self.weight = nn.Parameter(torch.empty(num_classes, out_dim))
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Linear

    def logits(self, rep) -> Tensor:
        """Class scores of every row (what accuracy is measured on)."""
        feats = rep.features if rep.mask is None else rep.features * rep.mask
        out = feats @ get_nonneg(self.weight_map)(self.weight).T
        return out if self.bias is None else out + self.bias

    def forward(self, rep, batch: Batch) -> LossTerms:
        return LossTerms.single("ce", F.cross_entropy(self.logits(rep).float(), batch.labels))
