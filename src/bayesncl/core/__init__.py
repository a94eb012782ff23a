"""Pure-PyTorch core: non-negativity maps, top-k, gates, objectives, the representation path.

Nothing here imports Lightning; use it in any training loop. The extension points are plain
registries: ``NONNEG_MAPS`` (phi), ``GATES`` (gate classes), ``LOSSES`` (objectives).
"""

from bayesncl.core.config import MethodConfig
from bayesncl.core.frequency import FrequencyEstimate, FrequencyGate, IPWNTXentObjective
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
from bayesncl.core.multimodal import LearnableTemperature, TwoTower, clip_loss
from bayesncl.core.nonneg import NON_NEGATIVE, NONNEG_MAPS, get_nonneg, rep_relu
from bayesncl.core.norm import normalize_rows
from bayesncl.core.objectives import Batch, NTXentObjective, Objective
from bayesncl.core.pipeline import NCLHead, Representation, make_projector
from bayesncl.core.presets import PRESETS, from_legacy, method_preset
from bayesncl.core.registry import GATES, LOSSES
from bayesncl.core.spectral import SpectralObjective, spectral_loss
from bayesncl.core.supervised import NCEObjective, nonneg_cross_entropy
from bayesncl.core.topk import topk_mask

__all__ = [
    "GATES",
    "GATE_MODES",
    "LOSSES",
    "NONNEG_MAPS",
    "NON_NEGATIVE",
    "PRESETS",
    "Batch",
    "BayesianGate",
    "FrequencyEstimate",
    "FrequencyGate",
    "GateConfig",
    "GateOutput",
    "IPWNTXentObjective",
    "LearnableTemperature",
    "LossTerms",
    "MethodConfig",
    "NCEObjective",
    "NCLHead",
    "NTXentObjective",
    "Objective",
    "Representation",
    "SpectralObjective",
    "TwoTower",
    "bernoulli_kl",
    "check_finite",
    "clip_loss",
    "from_legacy",
    "gather_with_grad",
    "get_nonneg",
    "make_gate_head",
    "make_projector",
    "method_preset",
    "nonneg_cross_entropy",
    "normalize_rows",
    "nt_xent",
    "rep_relu",
    "sample_mask",
    "spectral_loss",
    "topk_mask",
]
