"""The one method config: what turns backbone features into the trained representation.

Nested and typed, the same object in Python, YAML (``model.method`` of ``bayesncl fit``) and
checkpoints: ``MethodConfig.from_dict(cfg.to_dict()) == cfg``. Every setting is checked when the
config is made, and the error names the key and what to use instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bayesncl.core.gates import GateConfig
from bayesncl.core.nonneg import get_nonneg
from bayesncl.core.registry import get_gate, get_objective, objective_arg_names


@dataclass(frozen=True)
class MethodConfig:
    """One method = one configuration of the representation path (spec §1.7 steps 1-7).

    Args:
        name: a label (the preset it came from); it changes nothing.
        projector: the MLP projector h -> z (False: z = h, the representation has the backbone's
            width, e.g. supervised CE/NCE "without projector", spec §2.1).
        nonneg: the non-negativity map phi (``bayesncl.core.nonneg.NONNEG_MAPS``).
        topk_k: keep the k largest entries per row (None: no top-k).
        gate: the gate (``bayesncl.core.gates``; None: no gate).
        objective: the training objective (``bayesncl.core.registry.LOSSES``).
        tau: temperature of the objective (0.2 in every official config).
        objective_args: the objective's own settings (keyword arguments of its class).
    """

    name: str = "custom"
    projector: bool = True
    nonneg: str = "identity"
    topk_k: int | None = None
    gate: GateConfig | None = None
    objective: str = "nt_xent"
    tau: float = 0.2
    objective_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.gate, Mapping):
            object.__setattr__(self, "gate", _build(GateConfig, self.gate, "method.gate"))
        get_nonneg(self.nonneg)
        if self.gate is not None:
            get_gate(self.gate.kind)
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"method.tau={self.tau!r} must be > 0")
        if self.topk_k is not None and (
            isinstance(self.topk_k, bool) or not isinstance(self.topk_k, int) or self.topk_k < 1
        ):
            raise ValueError(f"method.topk_k={self.topk_k!r} must be a positive integer or null")
        get_objective(self.objective)
        unknown = set(self.objective_args) - objective_arg_names(self.objective)
        if unknown:
            valid = ", ".join(sorted(objective_arg_names(self.objective))) or "none"
            raise ValueError(
                f"method.objective_args {sorted(unknown)} are not settings of objective "
                f"{self.objective!r}; valid: {valid}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples): YAML-, JSON- and checkpoint-safe."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MethodConfig:
        """Inverse of :meth:`to_dict`; unknown keys are errors that name them."""
        return _build(cls, data, "method")

    def updated(self, changes: Mapping[str, Any]) -> MethodConfig:
        """A copy with ``changes`` (a nested dict, e.g. ``{"gate": {"prior": 0.5}}``) applied.

        Gate settings on a method without a gate are an error (they would silently add one).
        """
        changes = dict(changes)
        gate = changes.pop("gate", _MISSING)
        data = self.to_dict()
        if isinstance(gate, Mapping):
            if data["gate"] is None:
                raise ValueError(
                    f"method {self.name!r} has no gate, so gate settings {dict(gate)} do not apply"
                )
            data["gate"] = {**data["gate"], **gate}
        elif isinstance(gate, GateConfig):
            data["gate"] = _plain(dataclasses.asdict(gate))
        elif gate is None:
            data["gate"] = None
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"unknown method settings {sorted(unknown)}; valid: {_names(type(self))}"
            )
        data.update(changes)
        return MethodConfig.from_dict(data)


_MISSING: Any = object()


def _names(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping of settings, got {data!r}")
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {where} settings {sorted(unknown)}; valid: {_names(cls)}")
    return cls(**data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
