"""Cross-modal retrieval and per-dimension agreement (ncl-extras-spec §4.3)."""

from __future__ import annotations

import math

import pytest
import torch

from bayesncl.metrics.crossmodal import cross_modal_retrieval, dimension_agreement


def test_retrieval_of_identical_and_shifted_pairs():
    a = torch.eye(6)
    assert cross_modal_retrieval(a, a * 3, ks=(1, 5)) == {
        "a_to_b/R@1": 1.0, "a_to_b/R@5": 1.0, "b_to_a/R@1": 1.0, "b_to_a/R@5": 1.0,
    }  # fmt: skip
    # b_i = a_{i+1}: the partner of every query is orthogonal, tied with 4 others -> rank 5
    got = cross_modal_retrieval(a, a.roll(1, 0), ks=(1, 5, 6))
    assert got["a_to_b/R@1"] == 0.0 and got["a_to_b/R@5"] == 0.0 and got["a_to_b/R@6"] == 1.0


def test_retrieval_is_asymmetric_when_the_codes_are():
    # a: rows 0 and 1 identical, so querying with a_1 ties a_0's partner; b is distinct
    a = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    got = cross_modal_retrieval(a, b, ks=(1, 2), chunk=2)  # chunking changes nothing
    # a_0 -> b: sims (1, .8, 0): hit; a_1 -> b: sims (1, .8, 0): partner second; a_2: hit
    assert got["a_to_b/R@1"] == pytest.approx(2 / 3) and got["a_to_b/R@2"] == 1.0
    # b_0 -> a: sims (1, 1, 0) tie counts against: miss at 1; b_1 -> a: (.8, .8, 0) miss
    assert got["b_to_a/R@1"] == pytest.approx(1 / 3) and got["b_to_a/R@2"] == 1.0


def test_zero_codes_do_not_score_perfect_recall():
    zeros = torch.zeros(4, 3)
    assert cross_modal_retrieval(zeros, zeros, ks=(1, 4))["a_to_b/R@1"] == 0.0


def test_retrieval_rejects_bad_k_and_shapes():
    with pytest.raises(ValueError, match=r"ks=\[10\] must lie in 1..3"):
        cross_modal_retrieval(torch.eye(3), torch.eye(3), ks=(10,))
    with pytest.raises(ValueError, match="equal shape"):
        cross_modal_retrieval(torch.eye(3), torch.eye(4))


def test_dimension_agreement_known_answer():
    a = torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 2.0], [2.0, 0.0, 0.0, 2.0]])
    b = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [4.0, 1.0, 0.0, 1.0]])
    got = dimension_agreement(a, b)
    corr = got["correlation"]
    assert corr[0].item() == pytest.approx(1.0)  # b0 = 2 a0
    assert corr[1].item() == pytest.approx(-0.5)  # (0,1,0) vs (0,0,1)
    assert math.isnan(corr[2].item()) and math.isnan(corr[3].item())  # constant columns
    assert got["mean_correlation"] == pytest.approx(0.25)
    # active: a {0, 1, 3}, b {0, 1, 3}; dim 2 in neither
    assert (got["share_both"], got["share_one"], got["share_none"]) == (0.75, 0.0, 0.25)
    # supports per pair: {0,3}/{0,3} -> 1; {1,3}/{3} -> 1/2; {0,3}/{0,1,3} -> 2/3
    assert got["support_jaccard"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)


def test_dimension_agreement_one_modality_only():
    a = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    got = dimension_agreement(a, b)
    assert (got["share_both"], got["share_one"], got["share_none"]) == (0.0, 0.5, 0.5)
    assert math.isnan(got["mean_correlation"]) and got["support_jaccard"] == 0.0


def test_retrieval_keys_name_the_two_sides():
    a = torch.eye(3)
    assert set(cross_modal_retrieval(a, a, [1], names=("x", "y"))) == {"x_to_y/R@1", "y_to_x/R@1"}
