"""Checkable theory of the NCL paper: NCL is symmetric NMF of the augmentation graph."""

from bayesncl.theory.nmf import (
    LatentClassModel,
    feature_matrix,
    latent_class_model,
    matched_correlation,
    mf_objective,
    normalized_graph,
    population_spectral_loss,
    symnmf,
)

__all__ = [
    "LatentClassModel",
    "feature_matrix",
    "latent_class_model",
    "matched_correlation",
    "mf_objective",
    "normalized_graph",
    "population_spectral_loss",
    "symnmf",
]
