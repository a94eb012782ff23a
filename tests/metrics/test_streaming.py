import math

import pytest
import torch

from bayesncl.metrics import (
    InterpretabilityMetrics,
    class_consistency,
    effective_rank,
    interpretability_report,
    orthogonality,
    semantic_entropy,
    sparsity,
)
from bayesncl.metrics.reference import loop_effective_rank

from .test_interpretability import mean_entropy_case, sparse_features


def test_streaming_equals_one_shot():
    f, y = sparse_features(n=300, d=32, classes=5, seed=3)
    metric = InterpretabilityMetrics(32, 5)
    for chunk_f, chunk_y in zip(f.split(37), y.split(37)):
        metric.update(chunk_f, chunk_y)
    got = {k: v.item() for k, v in metric.compute().items()}
    one = {
        "consistency": class_consistency(f, y),
        "entropy_sum": semantic_entropy(f, y, "sum"),
        "entropy_mean": semantic_entropy(f, y, "mean"),
        "entropy_frequency": semantic_entropy(f, y, "frequency"),
        "sparsity": sparsity(f),
        "orthogonality": orthogonality(f),
        "orthogonality_official": orthogonality(f, official=True),
        "effective_rank": effective_rank(f),
    }
    for k, v in one.items():
        assert got[k] == pytest.approx(v.item(), rel=1e-5, abs=1e-7), k
    assert got["active_fraction"] == pytest.approx(1 - got["sparsity"])
    report = interpretability_report(f, y, num_classes=5)
    assert report == pytest.approx(got, rel=1e-6)


def test_streaming_counts_negative_entries_and_dead_batches():
    f, y = sparse_features(n=200, d=16, classes=3, seed=6)
    f[:40, 6:] = 0.0  # the first batches leave most dimensions silent (partial Gram updates)
    f[50:60] *= -1.0
    metric = InterpretabilityMetrics(16, 3)
    for chunk_f, chunk_y in zip(f.split(20), y.split(20)):
        metric.update(chunk_f, chunk_y)
    got = metric.compute()
    assert got["nonneg_ratio"].item() == pytest.approx((f >= 0).double().mean().item())
    assert got["orthogonality"].item() == pytest.approx(orthogonality(f).item(), rel=1e-5)
    assert got["effective_rank"].item() == pytest.approx(effective_rank(f).item(), rel=1e-5)


def test_reset_and_no_spectral():
    f, y = sparse_features()
    m = InterpretabilityMetrics(f.shape[1], 4, spectral=False)
    m.update(f, y)
    out = m.compute()
    assert "orthogonality" not in out
    m.reset()
    m.update(f[:10], y[:10])
    assert m.compute()["consistency"].item() == pytest.approx(
        class_consistency(f[:10], y[:10]).item(), rel=1e-6
    )


def test_metric_is_synced_across_ranks_by_sum():
    m = InterpretabilityMetrics(4, 2)
    # every state is reduced by summation, so DDP ranks and batches add up exactly
    assert {fn.__name__ for fn in m._reductions.values()} == {"dim_zero_sum"}
    assert torch.all(m.counts == 0)


def test_streaming_entropy_mean_skips_dimensions_with_tiny_class_means():
    f, y = mean_entropy_case()  # official H_mean = ln 2 (issue 11 item 6)
    metric = InterpretabilityMetrics(2, 2)
    for chunk_f, chunk_y in zip(f.split(3), y.split(3)):
        metric.update(chunk_f, chunk_y)
    assert metric.compute()["entropy_mean"].item() == pytest.approx(0.693147, abs=1e-6)
    assert interpretability_report(f, y)["entropy_mean"] == pytest.approx(0.693147, abs=1e-6)


def test_consistency_without_active_dimension_is_nan():
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    report = interpretability_report(torch.zeros(6, 4), y, num_classes=2)
    assert math.isnan(report["consistency"])  # undefined, not 0.0 (official: NaN)
    assert report["entropy_sum"] == 0.0 and report["active_dims"] == 0.0
    metric = InterpretabilityMetrics(4, 2)
    metric.update(torch.zeros(3, 4), y[:3])  # silent batches first, then an active one
    assert math.isnan(metric.compute()["consistency"].item())
    metric.update(torch.eye(4)[:3], y[3:])
    assert metric.compute()["consistency"].item() == 1.0


def test_streaming_rank_log_eps_gives_the_official_value():
    f, y = sparse_features(n=60, d=12, seed=1)
    official = interpretability_report(f, y, num_classes=4, rank_log_eps=1e-6)["effective_rank"]
    assert official == pytest.approx(effective_rank(f, log_eps=1e-6).item(), rel=1e-6)
    assert official == pytest.approx(loop_effective_rank(f), rel=1e-5)
    assert interpretability_report(f, y, num_classes=4)["effective_rank"] == pytest.approx(
        effective_rank(f).item(), rel=1e-6
    )


def test_non_finite_batches_are_refused_before_any_state_changes():
    f, y = sparse_features(n=40, d=8, seed=2)
    bad = f.clone()
    bad[5, 1] = float("nan")
    msg = "features contain 1 non-finite values .*: the model diverged; "
    with pytest.raises(ValueError, match=msg):
        interpretability_report(bad, y, num_classes=4)
    metric = InterpretabilityMetrics(8, 4)
    metric.update(f[:20], y[:20])
    with pytest.raises(ValueError, match=msg):
        metric.update(bad[:20], y[:20])
    metric.update(f[20:], y[20:])
    assert metric.compute()["entropy_sum"].item() == pytest.approx(
        semantic_entropy(f, y, "sum").item(), rel=1e-6
    )
    assert metric.n_rows.item() == 40
