"""Interpretability and retrieval metrics (pure torch + torchmetrics; no Lightning)."""

from bayesncl.metrics.interpretability import (
    ENTROPY_VARIANTS,
    activation_ratio,
    active_dims,
    class_consistency,
    dimension_correlation,
    effective_rank,
    gram_matrix,
    nonneg_ratio,
    orthogonality,
    semantic_entropy,
    sparsity,
)
from bayesncl.metrics.nuisance import dimension_purity, nuisance_report
from bayesncl.metrics.retrieval import rank_dimensions, retrieval_precision
from bayesncl.metrics.streaming import InterpretabilityMetrics, interpretability_report

__all__ = [
    "ENTROPY_VARIANTS",
    "InterpretabilityMetrics",
    "activation_ratio",
    "active_dims",
    "class_consistency",
    "dimension_correlation",
    "dimension_purity",
    "effective_rank",
    "gram_matrix",
    "interpretability_report",
    "nonneg_ratio",
    "nuisance_report",
    "orthogonality",
    "rank_dimensions",
    "retrieval_precision",
    "semantic_entropy",
    "sparsity",
]
