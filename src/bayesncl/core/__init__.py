"""Pure-PyTorch core: non-negativity maps, top-k, Bayesian gates, losses, the representation path.

Nothing here imports Lightning; use it in any training loop.
"""

from bayesncl.core.gates import (
    GATE_MODES,
    BayesianGate,
    GateConfig,
    GateOutput,
    bernoulli_kl,
    make_gate_head,
    sample_mask,
)
from bayesncl.core.losses import LossTerms, check_finite, gather_with_grad, nt_xent
from bayesncl.core.nonneg import NON_NEGATIVE, NONNEG_MAPS, get_nonneg, rep_relu
from bayesncl.core.pipeline import (
    MethodConfig,
    NCLHead,
    Representation,
    make_projector,
    normalize_rows,
)
from bayesncl.core.presets import PRESETS, MethodOverrides, method_preset, resolve_method
from bayesncl.core.topk import topk_mask

__all__ = [
    "GATE_MODES",
    "NONNEG_MAPS",
    "NON_NEGATIVE",
    "PRESETS",
    "BayesianGate",
    "GateConfig",
    "GateOutput",
    "LossTerms",
    "MethodConfig",
    "MethodOverrides",
    "NCLHead",
    "Representation",
    "bernoulli_kl",
    "check_finite",
    "gather_with_grad",
    "get_nonneg",
    "make_gate_head",
    "make_projector",
    "method_preset",
    "normalize_rows",
    "nt_xent",
    "rep_relu",
    "resolve_method",
    "sample_mask",
    "topk_mask",
]
