"""The open core: registries, the one method config, and extension by one module + one entry."""

import dataclasses

import pytest
import torch
from torch import nn

from bayesncl.core import (
    GATES,
    LOSSES,
    PRESETS,
    Batch,
    GateConfig,
    LossTerms,
    MethodConfig,
    NCLHead,
    Objective,
    from_legacy,
    method_preset,
)


def test_registries_list_todays_objectives_and_gates():
    assert set(LOSSES) == {"nt_xent", "nce", "scl", "nt_xent_ipw"}
    assert set(GATES) == {"bernoulli", "frequency"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips(name):
    cfg = PRESETS[name]
    assert MethodConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.name == name


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"unknown method settings \['temperature'\]"):
        MethodConfig.from_dict({"temperature": 0.2})
    with pytest.raises(ValueError, match=r"unknown method\.gate settings \['rho'\]"):
        MethodConfig.from_dict({"gate": {"rho": 0.5}})
    with pytest.raises(
        ValueError,
        match="objective='infonce' is not known; use one of: nce, nt_xent, nt_xent_ipw, scl",
    ):
        MethodConfig(objective="infonce")
    with pytest.raises(ValueError, match=r"objective_args \['margin'\] are not settings"):
        MethodConfig(objective_args={"margin": 1.0})
    with pytest.raises(ValueError, match=r"\['mu'\] are not settings of objective 'nce'; valid: "):
        MethodConfig(objective="nce", objective_args={"mu": 1.0})
    with pytest.raises(ValueError, match="gate kind='l0' is not known"):
        MethodConfig(gate=GateConfig(kind="l0"))


def test_updated_changes_nested_settings():
    cfg = PRESETS["bayesncl"].updated({"gate": {"prior": 0.5, "kl_clamp": None}, "tau": 0.1})
    assert cfg.gate.prior == 0.5 and cfg.gate.kl_clamp is None and cfg.tau == 0.1
    assert cfg.gate.mode == "ste" and PRESETS["bayesncl"].gate.prior == 0.8
    assert PRESETS["bayesncl"].updated({"gate": None}).gate is None


def test_legacy_overrides_convert():
    """Checkpoints and configs written before the nested config (commit 85e91a1)."""
    cfg = from_legacy(
        "bayesncl-gs",
        {
            "gate_temperature": 0.5,
            "prior": 0.3,
            "exact_kl": True,
            "temperature": 0.1,
            "topk_k": None,
        },
    )
    assert cfg == dataclasses.replace(
        PRESETS["bayesncl-gs"],
        tau=0.1,
        gate=dataclasses.replace(
            PRESETS["bayesncl-gs"].gate, temperature=0.5, prior=0.3, kl_clamp=None
        ),
    )
    with pytest.raises(ValueError, match="unknown legacy"):
        from_legacy("ncl", {"rho": 1})


class _Margin(Objective):
    """A toy objective with a parameter and its own setting: the extension test."""

    min_views = 1
    needs_labels = True

    def __init__(self, *, tau, out_dim, num_classes=None, margin: float = 1.0):
        super().__init__(tau=tau, out_dim=out_dim, num_classes=num_classes)
        self.margin = margin
        self.classes = nn.Linear(out_dim, num_classes)

    def forward(self, rep, batch):
        ce = nn.functional.cross_entropy(self.classes(rep.output) * self.margin, batch.labels)
        return LossTerms.single("margin_ce", ce)


def test_a_new_objective_is_one_class_and_one_entry(monkeypatch):
    monkeypatch.setitem(LOSSES, "margin", _Margin)
    cfg = MethodConfig(nonneg="relu", objective="margin", objective_args={"margin": 2.0})
    assert MethodConfig.from_dict(cfg.to_dict()) == cfg
    head = NCLHead(6, 16, 8, cfg, num_classes=3)
    rep = head(torch.randn(5, 6))
    with pytest.raises(ValueError, match=r"needs batch\.labels"):
        head.loss(rep, torch.arange(5))
    terms = head.loss(rep, Batch(torch.arange(5), labels=torch.tensor([0, 1, 2, 0, 1])))
    assert set(terms.terms) == {"margin_ce"}
    groups = head.param_groups(0.1, 1e-4, gate_lr=0.5)
    assert set(groups) == {"projector", "objective"}


def test_gate_owns_penalty_and_param_group():
    head = NCLHead(6, 16, 8, method_preset("bayesncl", gate={"kl_weight": 0.25}))
    rep = head(torch.randn(4, 6))
    terms = head.loss(rep, torch.arange(2).repeat(2))
    assert set(terms.terms) == {"nt_xent", "kl"}
    torch.testing.assert_close(terms.total, terms.terms["nt_xent"] + 0.25 * terms.terms["kl"])
    groups = head.param_groups(0.1, 1e-4, gate_lr=0.5)
    assert groups["gate"] == (head.gate, 0.5, 1e-4)
    assert "objective" not in groups  # NT-Xent has no parameters
