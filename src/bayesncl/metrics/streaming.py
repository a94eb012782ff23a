"""Streaming, DDP-synced form of the interpretability metrics (a ``torchmetrics.Metric``).

Every metric of :mod:`bayesncl.metrics.interpretability` except retrieval is a function of
sum-reducible statistics (d x C tables, the d x d Gram matrix, counts), so batches can be added
one at a time and ranks summed, and the result equals the one-shot value on the whole set.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from bayesncl.metrics.interpretability import (
    ENTROPY_VARIANTS,
    class_tables,
    consistency_from_counts,
    correlation_from_gram,
    effective_rank_from_gram,
    entropy_class_table,
    entropy_from_table,
    gram_matrix,
    orthogonality_from_correlation,
)


class InterpretabilityMetrics(Metric):
    """Accumulates features (rows) and labels; ``compute()`` returns a dict of floats tensors.

    Args:
        num_dims: d, the feature width.
        num_classes: C.
        eps: activation threshold of consistency and entropy (1e-5, spec §2.2-2.3).
        sparsity_eps: threshold of sparsity (1e-5; NCL's offline script used 1e-2).
        spectral: also accumulate the d x d Gram matrix for orthogonality and effective rank.
        rank_log_eps: epsilon inside the log of the effective rank (0: exact entropy; 1e-6: the
            official value, see :func:`~bayesncl.metrics.interpretability.effective_rank_from_gram`).

    ``consistency`` is NaN when no dimension was ever active, as in the official code.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(
        self,
        num_dims: int,
        num_classes: int,
        eps: float = 1e-5,
        sparsity_eps: float = 1e-5,
        spectral: bool = True,
        rank_log_eps: float = 0.0,
    ) -> None:
        super().__init__()
        self.rank_log_eps = rank_log_eps
        self.num_classes, self.eps, self.sparsity_eps, self.spectral = (
            num_classes,
            eps,
            sparsity_eps,
            spectral,
        )
        d, c = num_dims, num_classes
        for name, shape in [
            ("counts", (d, c)),
            ("mass", (d, c)),
            ("freq", (d, c)),
            ("class_n", (c,)),
            ("col_abs", (d,)),
        ]:
            self.add_state(name, torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("n_rows", "n_small", "n_nonneg"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        if spectral:
            self.add_state("gram", torch.zeros((d, d), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, features: Tensor, labels: Tensor) -> None:
        """Add a batch. Raises ``ValueError`` if it holds NaN or Inf (a diverged model), before
        any state changes: the check is the first step of ``class_tables``."""
        f = features.detach().float()
        labels = labels.long()
        counts, mass, freq = class_tables(f, labels, self.num_classes, self.eps)
        self.counts += counts.double()
        self.mass += mass.double()
        self.freq += freq.double()
        self.class_n += torch.bincount(labels, minlength=self.num_classes).double()
        col_abs = mass.sum(1)
        self.col_abs += col_abs.double()
        self.n_rows += f.shape[0]
        small = (
            f.numel() - freq.sum()
            if self.sparsity_eps == self.eps
            else (f.abs() <= self.sparsity_eps).sum()
        )
        self.n_small += small.double()
        # one cheap min() instead of a count when nothing is negative (every rectified code)
        negative = (f < 0).sum() if bool(f.min() < 0) else 0
        self.n_nonneg += f.numel() - negative
        if self.spectral:
            live = col_abs > 0  # dimensions silent on this batch add nothing to F^T F
            if bool(live.all()):
                self.gram += gram_matrix(f).double()
            else:
                idx = live.nonzero().squeeze(1)
                self.gram[idx[:, None], idx] += gram_matrix(f[:, idx]).double()

    def compute(self) -> dict[str, Tensor]:
        d = self.col_abs.shape[0]
        entries = self.n_rows * d
        active = self.col_abs > 0
        entropy = {
            f"entropy_{v}": entropy_from_table(
                entropy_class_table(self.mass, self.freq, self.class_n, v, self.eps), min_mass=0.0
            )
            for v in ENTROPY_VARIANTS
        }
        out = {
            "consistency": consistency_from_counts(self.counts),
            **entropy,
            "sparsity": self.n_small / entries,
            "active_fraction": 1 - self.n_small / entries,
            "active_dims": active.sum().double(),
            "activation_ratio": active.sum().double() / d,
            "nonneg_ratio": self.n_nonneg / entries,
        }
        if self.spectral:
            gram = self.gram
            if not bool(active.all()):
                idx = active.nonzero().squeeze(1)
                gram = gram.index_select(0, idx).index_select(1, idx)
            corr = correlation_from_gram(gram)
            out["orthogonality"] = orthogonality_from_correlation(corr)
            out["orthogonality_official"] = orthogonality_from_correlation(corr, official=True)
            out["effective_rank"] = effective_rank_from_gram(gram, log_eps=self.rank_log_eps)
        return {k: v.float() for k, v in out.items()}


def interpretability_report(
    features: Tensor, labels: Tensor, num_classes: int | None = None, **kwargs: float | bool
) -> dict[str, float]:
    """Every streaming metric on the whole matrix at once, as plain floats (``consistency`` NaN
    when nothing is active). Raises ``ValueError`` if ``features`` hold NaN or Inf."""
    c = int(labels.max().item()) + 1 if num_classes is None else num_classes
    metric = InterpretabilityMetrics(features.shape[1], c, **kwargs)  # type: ignore[arg-type]
    metric.update(features, labels)
    return {k: float(v) for k, v in metric.compute().items()}
