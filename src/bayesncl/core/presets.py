"""Named method presets: each is a :class:`MethodConfig` of the one pipeline.

| name               | phi      | top-k | gate                                            |
|--------------------|----------|-------|-------------------------------------------------|
| cl                 | identity | -     | -                                               |
| ncl                | rep_relu | -     | -                                               |
| ncl-topk           | rep_relu | 32    | -                                               |
| bayesncl           | rep_relu | -     | STE, rho 0.8, lambda 3e-5, T 1.0, t 0.5         |
| bayesncl-gs        | rep_relu | -     | official single-Gumbel noise, same values       |
| bayesncl-logistic  | rep_relu | -     | binary-concrete (logistic) noise, same values   |
| bayesncl-soft      | rep_relu | -     | soft gating (alpha as the mask), trainable      |
| bayesncl-nodetach  | rep_relu | -     | STE, head sees h (gradient reaches backbone)    |
| bayesncl-head1     | rep_relu | -     | STE, 1-layer head                               |
| bayesncl-head3     | rep_relu | -     | STE, 3-layer head                               |

Defaults are the released CIFAR-100 values (spec §1.7). Two values are not released anywhere:
* TopK's k: 32 = K/8 for K = 256. NCL's own features keep well under 10% of the 256 dimensions
  active per sample (NCL paper Fig. 3b), so K/8 constrains a little more loosely than NCL itself
  does; override ``topk_k`` for other K (the ImageNet-100 configs use 256 = 2048/8).
* The Gumbel variant's T: 1.0, the released STE value, so that the two gate types differ only in
  the noise.
``ncl`` uses rep_relu (NCL's CIFAR default); the ImageNet-100 configs switch to relu as officially.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bayesncl.core.gates import GateConfig, GateMode
from bayesncl.core.pipeline import MethodConfig

DEFAULT_TOPK_K = 32

_GATE = GateConfig()

PRESETS: dict[str, MethodConfig] = {
    "cl": MethodConfig(nonneg="identity"),
    "ncl": MethodConfig(nonneg="rep_relu"),
    "ncl-topk": MethodConfig(nonneg="rep_relu", topk_k=DEFAULT_TOPK_K),
    "bayesncl": MethodConfig(nonneg="rep_relu", gate=_GATE),
    "bayesncl-gs": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, mode="gumbel")),
    "bayesncl-logistic": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, mode="logistic")),
    "bayesncl-soft": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, mode="soft")),
    "bayesncl-nodetach": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, detach=False)),
    "bayesncl-head1": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, head_depth=1)),
    "bayesncl-head3": MethodConfig(nonneg="rep_relu", gate=replace(_GATE, head_depth=3)),
}


def method_preset(name: str, **overrides: Any) -> MethodConfig:
    """The preset ``name`` with top-level fields replaced; gate fields go in ``gate={...}``.

    >>> method_preset("bayesncl", gate={"prior": 0.5}).gate.prior
    0.5
    """
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"method={name!r} is not a preset; use one of: {', '.join(PRESETS)}"
        ) from None
    gate_overrides = overrides.pop("gate", None)
    if gate_overrides:
        if base.gate is None:
            raise ValueError(
                f"method={name!r} has no gate, so gate settings {gate_overrides} do not apply"
            )
        overrides["gate"] = replace(base.gate, **gate_overrides)
    unknown = set(overrides) - set(MethodConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown method settings {sorted(unknown)}; valid: {sorted(MethodConfig.__dataclass_fields__)}"
        )
    return replace(base, **overrides)


@dataclass(frozen=True)
class MethodOverrides:
    """Flat, typed changes to a preset (for config files and sweeps); None keeps the preset's value.

    ``exact_kl=True`` computes the KL without the official clamp (``kl_clamp=None``).
    """

    nonneg: str | None = None
    topk_k: int | None = None
    temperature: float | None = None
    gate_mode: GateMode | None = None
    gate_temperature: float | None = None
    threshold: float | None = None
    prior: float | None = None
    kl_weight: float | None = None
    exact_kl: bool | None = None
    head_depth: int | None = None
    head_hidden_dim: int | None = None
    detach: bool | None = None


_GATE_FIELDS = {
    "gate_mode": "mode",
    "gate_temperature": "temperature",
    "threshold": "threshold",
    "prior": "prior",
    "kl_weight": "kl_weight",
    "head_depth": "head_depth",
    "head_hidden_dim": "head_hidden_dim",
    "detach": "detach",
}


def resolve_method(name: str, overrides: MethodOverrides | None = None) -> MethodConfig:
    """The preset ``name`` with ``overrides`` applied; errors name the offending setting."""
    o = overrides or MethodOverrides()
    top = {
        k: getattr(o, k) for k in ("nonneg", "topk_k", "temperature") if getattr(o, k) is not None
    }
    gate = {g: getattr(o, k) for k, g in _GATE_FIELDS.items() if getattr(o, k) is not None}
    if o.exact_kl is not None:
        gate["kl_clamp"] = None if o.exact_kl else (0.01, 0.99)
    if gate:
        top["gate"] = gate
    return method_preset(name, **top)
