"""Training objectives as a registry: ``LOSSES[name]`` (``bayesncl.core.registry``) is a small ``nn.Module`` class.

An objective receives the :class:`~bayesncl.core.pipeline.Representation` of a batch and the
:class:`Batch` (sample indexes, labels, a second modality when there is one) and returns
:class:`~bayesncl.core.losses.LossTerms`: a total and named terms, which the training layer logs
by name. It is built as ``LOSSES[name](tau=..., out_dim=K, num_classes=C, **objective_args)``;
``objective_args`` are the objective's own keyword arguments, checked when the method config is
made. Objectives with parameters (a classifier, a learnable temperature) own them and say which
optimiser group they belong to in :meth:`Objective.param_groups`.

Adding an objective = one module defining a subclass of :class:`Objective` + one entry in
``bayesncl.core.registry.LOSSES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from bayesncl.core.losses import LossTerms, nt_xent
from bayesncl.core.representation import Representation


@dataclass
class Batch:
    """Everything besides the representation that an objective may use (one row per view).

    indexes: sample index of every row; rows with the same index are views of one sample.
    labels: class label of every row (supervised objectives), or None.
    pair: rows of a second modality (multi-modal objectives), or None.
    """

    indexes: Tensor
    labels: Tensor | None = None
    pair: Any = None


class Objective(nn.Module):
    """Base of every objective. Subclasses implement ``forward(rep, batch) -> LossTerms``.

    Class attributes: ``min_views`` views per sample the objective needs (contrastive: 2);
    ``needs_labels`` whether ``batch.labels`` must be given.
    """

    min_views: int = 2
    needs_labels: bool = False

    def __init__(self, *, tau: float, out_dim: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.tau, self.out_dim, self.num_classes = tau, out_dim, num_classes

    def forward(self, rep: Representation, batch: Batch) -> LossTerms:  # pragma: no cover
        raise NotImplementedError

    def param_groups(
        self, lr: float, weight_decay: float
    ) -> dict[str, tuple[nn.Module, float, float]]:
        """Optimiser groups of the objective's own parameters: name -> (module, lr, wd)."""
        if any(True for _ in self.parameters()):
            return {"objective": (self, lr, weight_decay)}
        return {}


class NTXentObjective(Objective):
    """SimCLR's NT-Xent (InfoNCE) on the final representation ``rep.output`` (spec §1.2).

    Term ``nt_xent``. (In the NCL paper "NCE" is the supervised non-negative cross-entropy, a
    different objective; this term is the contrastive InfoNCE loss.)
    """

    def forward(self, rep: Representation, batch: Batch) -> LossTerms:
        return LossTerms.single("nt_xent", nt_xent(rep.output, batch.indexes, self.tau))
