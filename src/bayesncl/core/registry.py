"""The registries of objectives and gates.

``LOSSES[name]`` is an :class:`~bayesncl.core.objectives.Objective` class and ``GATES[kind]`` a
gate class (``bayesncl.core.gates``). Adding either = one module + one line here.
"""

from __future__ import annotations

import inspect

from torch import nn

from bayesncl.core.frequency import FrequencyGate, IPWNTXentObjective
from bayesncl.core.gates import BayesianGate
from bayesncl.core.objectives import NTXentObjective, Objective
from bayesncl.core.spectral import SpectralObjective
from bayesncl.core.supervised import NCEObjective

LOSSES: dict[str, type[Objective]] = {
    "nt_xent": NTXentObjective,  # SimCLR InfoNCE (CL, NCL, BayesNCL)
    "nce": NCEObjective,  # supervised (non-negative) cross-entropy, NCL paper §5 / spec §2
    "scl": SpectralObjective,  # spectral contrastive loss, spec §3
    "nt_xent_ipw": IPWNTXentObjective,  # NT-Xent, inverse-frequency weighted similarity
}

GATES: dict[str, type[nn.Module]] = {
    "bernoulli": BayesianGate,  # BayesNCL's gate, prior Bern(rho)
    "frequency": FrequencyGate,  # the same with rho_k = rho (1 - pi_k)^gamma
}


def get_gate(kind: str) -> type[nn.Module]:
    """The gate class ``kind``; ``ValueError`` listing the valid kinds otherwise."""
    try:
        return GATES[kind]
    except KeyError:
        raise ValueError(
            f"gate kind={kind!r} is not known; use one of: {', '.join(sorted(GATES))}"
        ) from None


_BASE_ARGS = frozenset({"self", "tau", "out_dim", "num_classes"})


def get_objective(name: str) -> type[Objective]:
    """The objective class ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(
            f"objective={name!r} is not known; use one of: {', '.join(sorted(LOSSES))}"
        ) from None


def objective_arg_names(name: str) -> frozenset[str]:
    """The ``objective_args`` keys the objective ``name`` accepts (its own keyword arguments)."""
    params = inspect.signature(get_objective(name).__init__).parameters
    return frozenset(p for p in params if p not in _BASE_ARGS and not p.startswith("_"))
