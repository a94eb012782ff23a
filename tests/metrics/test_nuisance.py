"""Nuisance metrics: purity, lift over chance, nuisance-dominated dimensions, gate open rates."""

from __future__ import annotations

import math

import torch

from bayesncl.metrics.nuisance import dimension_purity, nuisance_report


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # 8 samples, classes 0/1 (4 each), background 0 in 6 samples (frequency 0.75), 1 in 2
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    nuisance = torch.tensor([0, 0, 0, 1, 0, 0, 0, 1])
    f = torch.zeros(8, 3)
    f[labels == 0, 0] = 1.0  # dim 0: class 0 only (purity 1 for the class)
    f[nuisance == 1, 1] = 1.0  # dim 1: background 1 only, one sample of each class
    f[:, 2] = 0.5  # dim 2: everyone (chance for both labels)
    return f, labels, nuisance


def test_purity_and_lift_known_answers() -> None:
    f, labels, nuisance = _case()
    cls = dimension_purity(f, labels)
    torch.testing.assert_close(cls.purity, torch.tensor([1.0, 0.5, 0.5]))
    torch.testing.assert_close(cls.lift, torch.tensor([1.0, 0.0, 0.0]))  # class share 0.5
    nui = dimension_purity(f, nuisance)
    torch.testing.assert_close(nui.purity, torch.tensor([0.75, 1.0, 0.75]))
    # dim 0: majority background 0 (share 0.75), purity 0.75 -> lift 0; dim 1: background 1
    # (share 0.25), purity 1 -> lift 1
    torch.testing.assert_close(nui.lift, torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(nui.active, torch.tensor([4.0, 2.0, 8.0]))


def test_report_counts_the_dominated_dimension_and_gate_rates() -> None:
    f, labels, nuisance = _case()
    mask = torch.tensor([[1.0, 0.0, 1.0]]).repeat(8, 1)
    mask[:4, 1] = 1.0  # dim 1 open on half the samples
    r = nuisance_report(f, labels, nuisance, mask=mask)
    assert r["nuisance_dims"] == 1
    assert math.isclose(r["nuisance_dim_share"], 1 / 3, rel_tol=1e-6)
    assert math.isclose(r["nuisance_consistency"], (0.75 + 1.0 + 0.75) / 3, rel_tol=1e-6)
    assert math.isclose(r["nuisance_chance"], 0.75)
    assert math.isclose(r["gate_open_nuisance_dims"], 0.5)
    assert math.isclose(r["gate_open_class_dims"], 1.0)
    assert math.isclose(r["class_lift"], 1 / 3, rel_tol=1e-6)


def test_inactive_dimensions_are_nan_not_counted() -> None:
    f, labels, nuisance = _case()
    f = torch.cat([f, torch.zeros(8, 1)], 1)
    r = nuisance_report(f, labels, nuisance)
    assert r["nuisance_dims"] == 1 and math.isclose(r["nuisance_dim_share"], 1 / 3, rel_tol=1e-6)
    assert math.isnan(float(dimension_purity(f, labels).purity[3]))
