"""Feature selection criteria, consistency variants and SEPIN on known answers."""

from __future__ import annotations

import math

import pytest
import torch

from bayesncl.metrics.consistency_variants import consistency_rectified, consistency_top_m
from bayesncl.metrics.feature_selection import select_dimensions
from bayesncl.metrics.separability import infonce_mi, sepin_at_k


def test_selection_criteria_pick_the_expected_dimensions() -> None:
    z = torch.tensor([[3.0, -5.0, 0.0, 1.0], [3.0, -5.0, 1.0, 1.0]])
    phi = z.clamp_min(0)
    assert select_dimensions(z, phi, 2, "activation").tolist() == [0, 3]
    # before the map, dimension 1 is the most negative: the smallest mean, so not kept
    assert select_dimensions(z, phi, 1, "preactivation").tolist() == [0]
    assert select_dimensions(z, phi, 4, "all").tolist() == [0, 1, 2, 3]
    r = select_dimensions(z, phi, 2, "random", seed=3)
    assert torch.equal(r, select_dimensions(z, phi, 2, "random", seed=3)) and len(r) == 2
    with pytest.raises(ValueError, match=r"keep=5 must be in 1\.\.4"):
        select_dimensions(z, phi, 5)


def test_consistency_variants_known_answers() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    f = torch.tensor([[1.0, -1.0], [0.9, 0.5], [0.1, 0.4], [0.0, 0.3]])
    # top-2 per dim: dim 0 -> samples 0, 1 (class 0, 0): 1.0; dim 1 -> samples 1, 2: 0.5
    assert float(consistency_top_m(f, labels, 2)) == pytest.approx(0.75)
    # rectified: dim 0 active on 0, 1, 2 (2/3 class 0); dim 1 on 1, 2, 3 (2/3 class 1)
    assert float(consistency_rectified(f, labels)) == pytest.approx(2 / 3)
    assert math.isnan(float(consistency_top_m(-f.abs() - 1, labels, 2)))


def _views(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, 3, generator=g)
    a = s + 0.7 * torch.randn(n, 3, generator=g)
    b = s + 0.7 * torch.randn(n, 3, generator=g)
    return torch.cat([a, a[:, :1]], 1), torch.cat([b, b[:, :1]], 1)  # dim 3 copies dim 0


def test_sepin_of_a_duplicated_dimension_is_zero_and_of_independent_ones_positive() -> None:
    a, b = _views()
    total = infonce_mi(a, b)
    sep = [total - infonce_mi(a[:, [j for j in range(4) if j != i]], b[:, [j for j in range(4) if j != i]]) for i in range(4)]  # fmt: skip
    assert abs(sep[0]) < 0.02 and abs(sep[3]) < 0.02  # either copy can go
    assert sep[1] > 0.15 and sep[2] > 0.15  # independent information
    r = sepin_at_k(a, b, (1, 2))
    assert r == sepin_at_k(a, b, (1, 2)) and "InfoNCE" in r["sepin_estimator"]
    assert r["sepin_at_all"] == pytest.approx(sum(sep) / 4, abs=1e-4)
