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


def __getattr__(name: str):
    """``bayesncl.load`` (:func:`bayesncl.export.load`), imported on first use so that
    ``import bayesncl`` stays light."""
    if name == "load":
        from bayesncl.export.model import load

        return load
    raise AttributeError(f"module 'bayesncl' has no attribute {name!r}")


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
    "load",
    "method_preset",
    "nt_xent",
    "topk_mask",
]
