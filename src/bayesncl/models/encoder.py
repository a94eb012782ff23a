"""Encoder = backbone + :class:`~bayesncl.core.pipeline.NCLHead`; ``represent`` is the single path
used by training, validation, ``bayesncl evaluate`` and export."""

from __future__ import annotations

from torch import Tensor, nn

from bayesncl.core.config import MethodConfig
from bayesncl.core.pipeline import NCLHead, Representation


class Encoder(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        method: MethodConfig,
        proj_hidden_dim: int = 2048,
        proj_output_dim: int = 256,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = NCLHead(feature_dim, proj_hidden_dim, proj_output_dim, method, num_classes)

    def represent(self, x: Tensor, *, soft_gate: bool = False) -> Representation:
        """x -> h -> z -> phi -> top-k -> normalise -> gate -> normalise (all intermediates)."""
        return self.head(self.backbone(x), soft_gate=soft_gate)

    def forward(self, x: Tensor) -> Tensor:
        """The final representation v (what the loss sees and what ``evaluate`` measures)."""
        return self.represent(x).output
