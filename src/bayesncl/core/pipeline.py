"""The one representation path used by training, evaluation and export (spec §1.7 steps 1-6).

    h --projector--> z --phi--> (top-k) --normalise--> z_hat --gate mask m--> normalise --> v

``NCLHead(h)`` returns a :class:`Representation` with every intermediate tensor that losses,
metrics and logging need; ``NCLHead.loss`` turns it into :class:`LossTerms`. CL, NCL, NCL+TopK and
BayesNCL are configurations (:class:`MethodConfig`) of this one path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from bayesncl.core.gates import BayesianGate, GateConfig
from bayesncl.core.losses import LossTerms, nt_xent
from bayesncl.core.nonneg import get_nonneg
from bayesncl.core.topk import check_topk, topk_mask


@dataclass(frozen=True)
class MethodConfig:
    """What turns the projector output into the trained representation.

    nonneg: name of the non-negativity map (``bayesncl.core.nonneg.NONNEG_MAPS``).
    topk_k: keep the k largest entries per row (None: no top-k).
    gate: the Bayesian gate (None: no gate).
    temperature: tau of NT-Xent (0.2 in every official config).
    """

    nonneg: str = "identity"
    topk_k: int | None = None
    gate: GateConfig | None = None
    temperature: float = 0.2

    def __post_init__(self) -> None:
        get_nonneg(self.nonneg)
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature (tau)={self.temperature!r} must be > 0")
        if self.topk_k is not None and (isinstance(self.topk_k, bool) or self.topk_k < 1):
            raise ValueError(f"topk_k={self.topk_k!r} must be a positive integer or None")


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


def normalize_rows(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Row-wise L2 normalisation x / ||x||, with zero rows mapped to zero *and no gradient*.

    ``F.normalize`` (the official choice) divides a zero row by eps = 1e-12, so its backward
    multiplies the incoming gradient by 1e12. That happens in the official code whenever every
    gate of a row is closed, or a rep_relu row is all negative (rep_relu passes GELU's gradient at
    zero output). Values are identical to ``F.normalize`` except for rows with 0 < ||x|| <= eps.
    """
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm > eps, x / norm.clamp_min(eps), torch.zeros_like(x))


def make_projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Linear(in, H) ReLU Linear(H, K), no BatchNorm (spec §1.1)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))


class NCLHead(nn.Module):
    """Projector + non-negativity + top-k + Bayesian gate, on top of any backbone.

    Args:
        in_dim: width of the backbone features h.
        hidden_dim: projector hidden width H (CIFAR 2048, ImageNet-100 16384).
        out_dim: representation width K (CIFAR 256, ImageNet-100 2048).
        method: a :class:`MethodConfig`, or a preset name (``bayesncl.core.presets``).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        out_dim: int = 256,
        method: MethodConfig | str = "ncl",
    ) -> None:
        super().__init__()
        if isinstance(method, str):
            from bayesncl.core.presets import method_preset

            method = method_preset(method)
        if method.topk_k is not None:
            check_topk(method.topk_k, out_dim)
        self.method = method
        self.out_dim = out_dim
        self.projector = make_projector(in_dim, hidden_dim, out_dim)
        self.nonneg = get_nonneg(method.nonneg)
        self.gate = BayesianGate(in_dim, out_dim, method.gate, hidden_dim) if method.gate else None

    def forward(self, h: Tensor, *, soft_gate: bool = False) -> Representation:
        """Run the path on backbone features ``h``. ``soft_gate`` uses alpha as the mask (eval)."""
        z = self.projector(h)
        features = self.nonneg(z)
        if self.method.topk_k is not None:
            features = topk_mask(features, self.method.topk_k)
        normalized = normalize_rows(features)
        if self.gate is None:
            return Representation(h, z, features, normalized, normalized)
        logits, alpha, mask = self.gate(h, soft=soft_gate)
        output = normalize_rows(normalized * mask)
        return Representation(h, z, features, normalized, output, logits, alpha, mask)

    def loss(self, rep: Representation, indexes: Tensor) -> LossTerms:
        """NT-Xent on ``rep.output`` plus lambda * KL of the gate (spec §1.7 step 7)."""
        nce = nt_xent(rep.output, indexes, self.method.temperature)
        if self.gate is None or rep.logits is None:
            kl = nce.new_zeros(())
            return LossTerms(nce, nce, kl)
        kl = self.gate.kl(rep.logits)
        return LossTerms(nce + self.gate.config.kl_weight * kl, nce, kl)
