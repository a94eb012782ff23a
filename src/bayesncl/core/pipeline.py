"""The one representation path used by training, evaluation and export (spec §1.7 steps 1-6).

    h --projector--> z --phi--> (top-k) --normalise--> z_hat --gate mask m--> normalise --> v

``NCLHead(h)`` returns a :class:`Representation` with every intermediate tensor that losses,
metrics and logging need; ``NCLHead.loss`` turns it into :class:`LossTerms` through the method's
objective (``LOSSES``) plus the gate's own penalty (``GATES``). CL, NCL, NCL+TopK and BayesNCL are
configurations (:class:`~bayesncl.core.config.MethodConfig`) of this one path.
"""

from __future__ import annotations

from torch import Tensor, nn

from bayesncl.core.config import MethodConfig
from bayesncl.core.gates import GateOutput
from bayesncl.core.losses import LossTerms
from bayesncl.core.nonneg import get_nonneg
from bayesncl.core.norm import normalize_rows
from bayesncl.core.objectives import Batch
from bayesncl.core.presets import method_preset
from bayesncl.core.registry import get_gate, get_objective
from bayesncl.core.representation import Representation
from bayesncl.core.topk import check_topk, topk_mask


def make_projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Linear(in, H) ReLU Linear(H, K), no BatchNorm (spec §1.1)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))


class NCLHead(nn.Module):
    """Projector + non-negativity + top-k + gate, on top of any backbone, and the objective.

    Args:
        in_dim: width of the backbone features h.
        hidden_dim: projector hidden width H (CIFAR 2048, ImageNet-100 16384).
        out_dim: representation width K (CIFAR 256, ImageNet-100 2048); ``in_dim`` when the
            method has no projector.
        method: a :class:`MethodConfig`, or a preset name (``bayesncl.core.presets``).
        num_classes: classes of the data, for objectives that need them (supervised ones).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        out_dim: int = 256,
        method: MethodConfig | str = "ncl",
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(method, str):
            method = method_preset(method)
        if not method.projector:
            out_dim = in_dim  # z = h
        if method.topk_k is not None:
            check_topk(method.topk_k, out_dim)
        self.method = method
        self.out_dim = out_dim
        self.projector = (
            make_projector(in_dim, hidden_dim, out_dim) if method.projector else nn.Identity()
        )
        self.nonneg = get_nonneg(method.nonneg)
        self.gate = (
            get_gate(method.gate.kind)(in_dim, out_dim, method.gate, hidden_dim)
            if method.gate is not None
            else None
        )
        try:
            self.objective = get_objective(method.objective)(
                tau=method.tau, out_dim=out_dim, num_classes=num_classes, **method.objective_args
            )
        except TypeError as err:
            raise ValueError(f"method.objective_args for {method.objective!r}: {err}") from None

    def forward(self, h: Tensor, *, soft_gate: bool = False) -> Representation:
        """Run the path on backbone features ``h``. ``soft_gate`` uses alpha as the mask (eval)."""
        z = self.projector(h)
        features = self.nonneg(z)
        if self.method.topk_k is not None:
            features = topk_mask(features, self.method.topk_k)
        normalized = normalize_rows(features)
        if self.gate is None:
            return Representation(h, z, features, normalized, normalized)
        logits, alpha, mask = self.gate(h, normalized, soft=soft_gate)
        output = normalize_rows(normalized * mask)
        return Representation(h, z, features, normalized, output, logits, alpha, mask)

    def loss(self, rep: Representation, batch: Batch | Tensor) -> LossTerms:
        """The objective's terms plus the gate's penalty (spec §1.7 step 7: NT-Xent + lambda KL).

        ``batch`` is a :class:`~bayesncl.core.objectives.Batch`, or just the sample indexes.
        """
        if not isinstance(batch, Batch):
            batch = Batch(indexes=batch)
        if self.objective.needs_labels and batch.labels is None:
            raise ValueError(f"objective {self.method.objective!r} needs batch.labels")
        terms = self.objective(rep, batch)
        if self.gate is not None and rep.logits is not None:
            terms = terms + self.gate.penalty(GateOutput(rep.logits, rep.alpha, rep.mask))
        return terms

    def param_groups(
        self, lr: float, weight_decay: float, gate_lr: float
    ) -> dict[str, tuple[nn.Module, float, float]]:
        """Optimiser groups of the head: projector, the gate's own and the objective's own."""
        groups = {}
        if self.method.projector:
            groups["projector"] = (self.projector, lr, weight_decay)
        if self.gate is not None:
            groups.update(self.gate.param_groups(gate_lr, weight_decay))
        groups.update(self.objective.param_groups(lr, weight_decay))
        return groups
