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

Every preset above trains with NT-Xent (InfoNCE, tau 0.2). The NCL paper's other systems
(ncl-extras-spec §2-3) are presets of the same path with another objective:

| name     | projector | phi      | objective                                            |
|----------|-----------|----------|------------------------------------------------------|
| ce       | none      | identity | supervised cross-entropy, class weights of any sign  |
| nce      | none      | relu     | supervised NCE, relu(W) (the weights must be >= 0)   |
| ce-mlp   | MLP       | identity | as ce, on the projector output                       |
| nce-mlp  | MLP       | relu     | as nce, on the projector output                      |
| scl      | MLP       | identity | spectral contrastive loss, mu 1 (HaoChen et al.)     |
| nscl     | MLP       | relu     | non-negative SCL                                     |

Frequency-aware (``bayesncl.core.frequency``): ``ncl-ipw`` trains NCL with the inverse-frequency
weighted similarity sum_k z_k z'_k / pi_k the BayesNCL paper derives; ``bayesncl-freq`` is
BayesNCL with one prior per dimension, rho_k = rho (1 - pi_k).

Defaults are the released CIFAR-100 values (spec §1.7). Two values are not released anywhere:
* TopK's k: 32 = K/8 for K = 256. NCL's own features keep well under 10% of the 256 dimensions
  active per sample (NCL paper Fig. 3b), so K/8 constrains a little more loosely than NCL itself
  does; override ``topk_k`` for other K (the ImageNet-100 configs use 256 = 2048/8).
* The Gumbel variant's T: 1.0, the released STE value, so that the two gate types differ only in
  the noise.
``ncl`` uses rep_relu (NCL's CIFAR default); the ImageNet-100 configs switch to relu as officially.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bayesncl.core.config import MethodConfig
from bayesncl.core.gates import GateConfig

DEFAULT_TOPK_K = 32

_GATE = GateConfig()
_CE = {"weight_map": "identity"}  # plain CE: class weights of any sign


def _preset(name: str, **settings: Any) -> MethodConfig:
    return MethodConfig(name=name, nonneg="rep_relu", **settings)


PRESETS: dict[str, MethodConfig] = {
    "cl": MethodConfig(name="cl", nonneg="identity"),
    "ncl": _preset("ncl"),
    "ncl-topk": _preset("ncl-topk", topk_k=DEFAULT_TOPK_K),
    "bayesncl": _preset("bayesncl", gate=_GATE),
    "bayesncl-gs": _preset("bayesncl-gs", gate=replace(_GATE, mode="gumbel")),
    "bayesncl-logistic": _preset("bayesncl-logistic", gate=replace(_GATE, mode="logistic")),
    "bayesncl-soft": _preset("bayesncl-soft", gate=replace(_GATE, mode="soft")),
    "bayesncl-nodetach": _preset("bayesncl-nodetach", gate=replace(_GATE, detach=False)),
    "bayesncl-head1": _preset("bayesncl-head1", gate=replace(_GATE, head_depth=1)),
    "bayesncl-head3": _preset("bayesncl-head3", gate=replace(_GATE, head_depth=3)),
    # the NCL paper's other systems (ncl-extras-spec §2, §3)
    "ce": MethodConfig(name="ce", projector=False, objective="nce", objective_args=_CE),
    "nce": MethodConfig(name="nce", projector=False, nonneg="relu", objective="nce"),
    "ce-mlp": MethodConfig(name="ce-mlp", objective="nce", objective_args=_CE),
    "nce-mlp": MethodConfig(name="nce-mlp", nonneg="relu", objective="nce"),
    "scl": MethodConfig(name="scl", objective="scl", objective_args={"mu": 1.0}),
    "nscl": MethodConfig(name="nscl", nonneg="relu", objective="scl", objective_args={"mu": 1.0}),
    # frequency-aware (BayesNCL paper §4's inverse-frequency similarity, issue "Where the gate matters")
    "ncl-ipw": _preset("ncl-ipw", objective="nt_xent_ipw"),
    "bayesncl-freq": _preset("bayesncl-freq", gate=replace(_GATE, kind="frequency")),
}


def method_preset(name: str, **changes: Any) -> MethodConfig:
    """The preset ``name`` with settings changed; gate settings go in ``gate={...}``.

    >>> method_preset("bayesncl", gate={"prior": 0.5}).gate.prior
    0.5
    """
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"method={name!r} is not a preset; use one of: {', '.join(PRESETS)}"
        ) from None
    return base.updated(changes) if changes else base


#: flat names of the checkpoint format before the nested method config (bayesncl <= 85e91a1)
_LEGACY_GATE_FIELDS = {
    "gate_mode": "mode",
    "gate_temperature": "temperature",
    "threshold": "threshold",
    "prior": "prior",
    "kl_weight": "kl_weight",
    "head_depth": "head_depth",
    "head_hidden_dim": "head_hidden_dim",
    "detach": "detach",
}


def from_legacy(name: str, overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The method of an old checkpoint or config (``method: NAME`` + flat ``method_overrides``).

    Only for reading files written before the nested config; new files store
    :meth:`MethodConfig.to_dict`. ``temperature`` was tau, ``exact_kl`` was ``kl_clamp=None``.
    """
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    top: dict[str, Any] = {}
    for key in ("nonneg", "topk_k"):
        if key in o:
            top[key] = o.pop(key)
    if "temperature" in o:
        top["tau"] = o.pop("temperature")
    gate = {g: o.pop(k) for k, g in _LEGACY_GATE_FIELDS.items() if k in o}
    if "exact_kl" in o:
        gate["kl_clamp"] = None if o.pop("exact_kl") else (0.01, 0.99)
    if o:
        raise ValueError(f"unknown legacy method_overrides {sorted(o)}")
    if gate:
        top["gate"] = gate
    return method_preset(name, **top)
