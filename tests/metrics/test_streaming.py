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

from .test_interpretability import sparse_features


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
