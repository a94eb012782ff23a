"""bayesncl: Non-negative Contrastive Learning (NCL) and Bayesian Gated NCL (BayesNCL)."""

from bayesncl.core import (
    BayesianGate,
    GateConfig,
    LossTerms,
    MethodConfig,
    NCLHead,
    Representation,
    bernoulli_kl,
    get_nonneg,
    method_preset,
    nt_xent,
    topk_mask,
)

__version__ = "0.1.0"

__all__ = [
    "BayesianGate",
    "GateConfig",
    "LossTerms",
    "MethodConfig",
    "NCLHead",
    "Representation",
    "__version__",
    "bernoulli_kl",
    "get_nonneg",
    "method_preset",
    "nt_xent",
    "topk_mask",
]
