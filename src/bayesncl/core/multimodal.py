"""Multi-modal NCL (MMNCL): two non-negative towers trained with CLIP's symmetric InfoNCE.

ncl-extras-spec §4.2 (an inferred definition, [INFER]): for a paired batch {(x_i, t_i)},
``u_i = normalize(phi(g(x_i)))``, ``v_i = normalize(phi(h(t_i)))``, ``s_ij = u_i . v_j / tau`` and

    L = 1/2 [ -(1/B) sum_i log softmax_j(s_ij)[i]  -  (1/B) sum_j log softmax_i(s_ij)[j] ].

Each tower is a backbone plus the core's :class:`~bayesncl.core.pipeline.NCLHead`, so
non-negativity, top-k and the gate are exactly those of the single-modality methods; the shared
dimension index across towers is what makes "one concept per dimension, in both modalities"
measurable (``bayesncl.metrics.crossmodal``).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from bayesncl.core.config import MethodConfig
from bayesncl.core.gates import GateOutput
from bayesncl.core.losses import LossTerms, gather_with_grad, is_distributed
from bayesncl.core.pipeline import NCLHead
from bayesncl.core.presets import method_preset
from bayesncl.core.registry import get_objective
from bayesncl.core.representation import Representation

#: CLIP's initial temperature (logit scale 1/0.07) and the cap of the logit scale
CLIP_INIT_TEMPERATURE = 0.07
CLIP_MAX_LOGIT_SCALE = 100.0


def clip_loss(
    u: Tensor, v: Tensor, temperature: float | Tensor = 0.2, *, gather: bool = True
) -> Tensor:
    """CLIP's symmetric InfoNCE of paired unit-norm rows ``u`` (n x K) and ``v`` (n x K).

    ``1/2 [CE(u v^T / tau, arange) + CE(v u^T / tau, arange)]``, row i of ``u`` paired with row i
    of ``v`` (spec §4.2). Logits in float32 with autocast off (as ``nt_xent``). Under
    ``torch.distributed`` both ``u`` and ``v`` are gathered from every rank with gradient and the
    targets are this rank's rows of the global batch, so DDP's gradient averaging gives exactly
    the full-batch gradient (every rank must hold the same number of pairs).
    """
    if u.shape != v.shape or u.dim() != 2:
        raise ValueError(
            f"clip_loss needs u and v of equal shape (n, K), got {tuple(u.shape)} "
            f"and {tuple(v.shape)}"
        )
    if isinstance(temperature, Tensor):
        if not bool((temperature > 0).all()):
            raise ValueError(f"temperature (tau)={temperature!r} must be > 0")
    elif not temperature > 0:
        raise ValueError(f"temperature (tau)={temperature!r} must be > 0")
    with torch.autocast(u.device.type, enabled=False):
        u, v = u.float(), v.float()
        tau = temperature.float() if isinstance(temperature, Tensor) else temperature
        n = u.shape[0]
        if gather and is_distributed():
            all_u, all_v = gather_with_grad(u), gather_with_grad(v)
            offset = dist.get_rank() * n
        else:
            all_u, all_v, offset = u, v, 0
        targets = torch.arange(n, device=u.device) + offset
        loss_uv = F.cross_entropy(u @ all_v.T / tau, targets)
        loss_vu = F.cross_entropy(v @ all_u.T / tau, targets)
        return (loss_uv + loss_vu) / 2


class LearnableTemperature(nn.Module):
    """CLIP's learnable temperature: a log logit scale, initialised at log(1/0.07), with the
    scale ``exp(log_scale)`` capped at 100 (tau >= 0.01). ``forward()`` returns tau = 1/scale."""

    def __init__(
        self, init: float = CLIP_INIT_TEMPERATURE, max_scale: float = CLIP_MAX_LOGIT_SCALE
    ) -> None:
        super().__init__()
        if not (init > 0 and max_scale > 0 and 1 / init <= max_scale):
            raise ValueError(
                f"temperature init={init!r} must be > 0 with 1/init <= max_scale={max_scale!r}"
            )
        self.max_log_scale = math.log(max_scale)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init)))

    def scale(self) -> Tensor:
        """The logit scale 1/tau, clamped at ``max_scale`` (no gradient beyond the cap)."""
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    def forward(self) -> Tensor:
        return 1 / self.scale()


class Tower(nn.Module):
    """One modality: a backbone (any ``nn.Module`` producing features of width ``feature_dim``)
    plus the core's :class:`NCLHead` for the method (non-negativity, top-k, gate)."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        method: MethodConfig | str,
        hidden_dim: int = 512,
        out_dim: int = 64,
    ) -> None:
        super().__init__()
        config = method_preset(method) if isinstance(method, str) else method
        refusal = (
            f"method {config.name!r} (objective {config.objective!r}) trains on labels or has "
            "parameters of its own; a tower of MMNCL is trained by the CLIP loss only: use a "
            "contrastive preset (cl, ncl, ncl-topk, bayesncl, ...)"
        )
        if get_objective(config.objective).needs_labels:
            raise ValueError(refusal)
        self.backbone = backbone
        self.head = NCLHead(feature_dim, hidden_dim, out_dim, config)
        if any(True for _ in self.head.objective.parameters()):
            raise ValueError(refusal)

    def forward(self, x: Tensor, *, soft_gate: bool = False) -> Representation:
        return self.head(self.backbone(x), soft_gate=soft_gate)

    def penalty(self, rep: Representation) -> LossTerms | None:
        """The gate's own penalty (e.g. lambda KL), or None without a gate."""
        if self.head.gate is None or rep.logits is None:
            return None
        return self.head.gate.penalty(GateOutput(rep.logits, rep.alpha, rep.mask))


class TwoTower(nn.Module):
    """Two towers ``x`` (e.g. image) and ``y`` (e.g. text, edge map) sharing the representation
    width K, trained with :func:`clip_loss` plus each tower's gate penalty (spec §4.2).

    Args:
        backbone_x, backbone_y: the two feature extractors.
        feature_dim_x, feature_dim_y: their feature widths.
        method_x, method_y: a :class:`MethodConfig` or preset name per tower (``method_y``
            defaults to ``method_x``). The methods' own objectives are not used.
        hidden_dim, out_dim: projector hidden width and representation width K (both towers).
        temperature: a fixed tau (NCL: 0.2), or ``"learnable"`` for CLIP's
            :class:`LearnableTemperature`.
    """

    def __init__(
        self,
        backbone_x: nn.Module,
        feature_dim_x: int,
        backbone_y: nn.Module,
        feature_dim_y: int,
        method_x: MethodConfig | str = "ncl",
        method_y: MethodConfig | str | None = None,
        hidden_dim: int = 512,
        out_dim: int = 64,
        temperature: float | str = 0.2,
    ) -> None:
        super().__init__()
        self.tower_x = Tower(backbone_x, feature_dim_x, method_x, hidden_dim, out_dim)
        self.tower_y = Tower(
            backbone_y,
            feature_dim_y,
            method_x if method_y is None else method_y,
            hidden_dim,
            out_dim,
        )
        kx, ky = self.tower_x.head.out_dim, self.tower_y.head.out_dim
        if kx != ky:
            raise ValueError(
                f"the two towers' representations differ in width ({kx} vs {ky}): a method "
                "without projector keeps its backbone's width; use projectors or equal widths"
            )
        self.out_dim = kx
        if temperature == "learnable":
            self.temperature: LearnableTemperature | None = LearnableTemperature()
            self.fixed_tau = None
        elif (
            isinstance(temperature, (int, float))
            and not isinstance(temperature, bool)
            and (math.isfinite(temperature) and temperature > 0)
        ):
            self.temperature, self.fixed_tau = None, float(temperature)
        else:
            raise ValueError(f"temperature={temperature!r} must be > 0 or 'learnable'")

    def tau(self) -> float | Tensor:
        """The current temperature (a tensor with gradient when learnable)."""
        return self.fixed_tau if self.temperature is None else self.temperature()

    def forward(
        self, x: Tensor, y: Tensor, *, soft_gate: bool = False
    ) -> tuple[Representation, Representation]:
        """The representations of both modalities (``.output`` is what the loss sees)."""
        return self.tower_x(x, soft_gate=soft_gate), self.tower_y(y, soft_gate=soft_gate)

    def loss(self, x: Tensor, y: Tensor) -> LossTerms:
        """Term ``clip`` plus each tower's gate terms, prefixed ``x_`` / ``y_`` (e.g. ``x_kl``)."""
        rep_x, rep_y = self(x, y)
        return self.loss_of(rep_x, rep_y)

    def loss_of(self, rep_x: Representation, rep_y: Representation) -> LossTerms:
        """:meth:`loss` on representations already computed."""
        terms = LossTerms.single("clip", clip_loss(rep_x.output, rep_y.output, self.tau()))
        for prefix, tower, rep in (("x", self.tower_x, rep_x), ("y", self.tower_y, rep_y)):
            penalty = tower.penalty(rep)
            if penalty is not None:
                terms = terms + LossTerms(
                    penalty.total, {f"{prefix}_{k}": t for k, t in penalty.terms.items()}
                )
        return terms
