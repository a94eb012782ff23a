import math

import pytest
import torch

from bayesncl.metrics import (
    activation_ratio,
    active_dims,
    class_consistency,
    dimension_correlation,
    effective_rank,
    nonneg_ratio,
    orthogonality,
    semantic_entropy,
    sparsity,
)
from bayesncl.metrics.interpretability import class_tables
from bayesncl.metrics.reference import (
    loop_class_consistency,
    loop_effective_rank,
    loop_orthogonality,
    loop_semantic_entropy,
)


def sparse_features(n=120, d=24, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    f = torch.relu(torch.randn(n, d, generator=g) - 0.8)
    f[:, :3] = 0.0  # dead dimensions
    f[:5] = 0.0  # all-zero rows
    f[:, 5] = 0.0
    f[7, 5] = 0.3  # a dimension activated by a single sample
    return f, labels


def test_known_consistency():
    # dim 0: samples of classes 0,0,1 -> 2/3; dim 1: class 1 only -> 1; dim 2: dead (skipped)
    f = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert class_consistency(f, y).item() == pytest.approx((2 / 3 + 1.0) / 2)


def test_dense_features_give_chance_consistency():
    f = torch.rand(1000, 16) + 0.1  # every sample activates every dimension (CL)
    y = torch.arange(10).repeat(100)
    assert class_consistency(f, y).item() == pytest.approx(0.10)
    assert semantic_entropy(f, y, "frequency").item() == pytest.approx(math.log(10))
    assert sparsity(f).item() == 0.0
    assert active_dims(f).item() == 16 and activation_ratio(f).item() == 1.0


def test_perfectly_aligned_features():
    y = torch.arange(4).repeat_interleave(5)
    f = torch.nn.functional.one_hot(y, 4).float() * 2.0
    assert class_consistency(f, y).item() == 1.0
    for v in ("sum", "mean", "frequency"):
        assert semantic_entropy(f, y, v).item() == pytest.approx(0.0, abs=1e-6)
    assert sparsity(f).item() == pytest.approx(0.75)
    assert orthogonality(f).item() == pytest.approx(0.0)


def test_known_entropy_variants():
    # one dimension, class 0 (3 samples) mass 3, class 1 (1 sample) mass 1
    f = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    y = torch.tensor([0, 0, 0, 1])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert semantic_entropy(f, y, "sum").item() == pytest.approx(h)
    assert semantic_entropy(f, y, "frequency").item() == pytest.approx(h)
    assert semantic_entropy(f, y, "mean").item() == pytest.approx(math.log(2), rel=1e-4)
    with pytest.raises(ValueError, match="entropy variant"):
        semantic_entropy(f, y, "median")


def test_known_orthogonality_and_official_variant():
    f = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # cos = 1/sqrt(2)
    assert orthogonality(f).item() == pytest.approx(1 / math.sqrt(2))
    assert orthogonality(f, official=True).item() == pytest.approx(1 / math.sqrt(2) / 4)
    torch.testing.assert_close(
        dimension_correlation(f), torch.tensor([[1.0, 0.7071068], [0.7071068, 1.0]])
    )


def test_effective_rank():
    f = torch.eye(4)  # four equal singular values: entropy ln 4, effective rank 4
    assert effective_rank(f).item() == pytest.approx(math.log(4), rel=1e-5)
    assert effective_rank(f, exponentiate=True).item() == pytest.approx(4.0, rel=1e-5)
    assert effective_rank(torch.ones(5, 3)).item() == pytest.approx(0.0, abs=1e-4)


def test_nonneg_ratio_and_sparsity_eps():
    f = torch.tensor([[-1.0, 0.0, 0.005, 2.0]])
    assert nonneg_ratio(f).item() == 0.75
    assert sparsity(f).item() == 0.25
    assert sparsity(f, eps=1e-2).item() == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_loop_on_sparse_features(seed):
    f, y = sparse_features(seed=seed)
    assert class_consistency(f, y).item() == pytest.approx(loop_class_consistency(f, y), rel=1e-6)
    for variant in ("sum", "mean", "frequency"):
        got = semantic_entropy(f, y, variant).item()
        assert got == pytest.approx(loop_semantic_entropy(f, y, variant), rel=1e-5), variant
    assert orthogonality(f).item() == pytest.approx(loop_orthogonality(f), rel=1e-5)


def test_degenerate_inputs():
    f = torch.zeros(6, 4)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    # no active dimension: consistency is undefined, NaN as officially (not 0.0, spec §2.2)
    assert math.isnan(class_consistency(f, y).item())
    assert math.isnan(loop_class_consistency(f, y))
    assert semantic_entropy(f, y).item() == 0.0  # official: 0 when no dimension is kept
    assert orthogonality(f).item() == 0.0


def mean_entropy_case():
    """Issue 11 item 6: 20 samples of 2 classes, f[:, 0] = 1, f[0, 1] = 5e-5. Dimension 1 passes
    the mass filter (5e-5 > 1e-5) but its class means (5e-5 / 10, 0) sum below 1e-5, so the
    official code skips it: H_mean = ln 2 (dimension 0 alone), not (ln 2 + 0) / 2 = 0.346574."""
    y = torch.arange(2).repeat_interleave(10)
    f = torch.zeros(20, 2)
    f[:, 0] = 1.0
    f[0, 1] = 5e-5
    return f, y


def test_entropy_mean_skips_dimensions_with_tiny_class_means():
    f, y = mean_entropy_case()
    assert semantic_entropy(f, y, "mean").item() == pytest.approx(0.693147, abs=1e-6)
    assert loop_semantic_entropy(f, y, "mean") == pytest.approx(0.693147, abs=1e-6)
    # the sum variant keeps dimension 1 (its mass 5e-5 sums above 1e-5): entropy 0 there
    assert semantic_entropy(f, y, "sum").item() == pytest.approx(math.log(2) / 2, abs=1e-6)


@pytest.mark.parametrize("chunk_rows", [1, 7, 128, 1000])
def test_class_tables_one_pass_equals_plain_formulas(chunk_rows):
    f, y = sparse_features(n=300, d=24, classes=4, seed=5)
    f[10:20] *= -1.0  # negative entries: tables use |F|
    counts, mass, freq = class_tables(f, y, 4, eps=1e-5, chunk_rows=chunk_rows)
    onehot = torch.nn.functional.one_hot(y, 4).double()
    f64 = f.double()
    norm = f64.norm(dim=1, keepdim=True).clamp_min(1e-12)
    torch.testing.assert_close(counts.double(), ((f64 / norm).abs() > 1e-5).double().T @ onehot)
    torch.testing.assert_close(mass.double(), f64.abs().T @ onehot, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(freq.double(), (f64.abs() > 1e-5).double().T @ onehot)


@pytest.mark.parametrize("seed", [0, 1])
def test_many_chunks_equal_loop(seed):
    f, y = sparse_features(n=700, d=40, classes=6, seed=seed)
    assert class_consistency(f, y).item() == pytest.approx(loop_class_consistency(f, y), rel=1e-6)
    for variant in ("sum", "mean", "frequency"):
        got = semantic_entropy(f, y, variant).item()
        assert got == pytest.approx(loop_semantic_entropy(f, y, variant), rel=1e-5), variant


def test_effective_rank_skips_dead_dimensions_exactly():
    f, _ = sparse_features(n=80, d=16, seed=4)  # three dead columns
    s = torch.linalg.svdvals(f.double())
    p = s / s.sum()
    h = -(p[p > 0] * p[p > 0].log()).sum()
    assert effective_rank(f).item() == pytest.approx(h.item(), rel=1e-5)
    assert effective_rank(torch.zeros(5, 4)).item() == 0.0


def test_effective_rank_official_log_eps():
    f = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0]))  # singular values 3, 2, 1, 0
    p = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64) / 6
    exact = float(-(p * p.log()).sum())
    official = float(-(p * (p + 1e-6).log()).sum())
    assert effective_rank(f).item() == pytest.approx(exact, rel=1e-6)  # default unchanged
    got = effective_rank(f, log_eps=1e-6).item()
    assert got == pytest.approx(official, rel=1e-6)
    assert got == pytest.approx(loop_effective_rank(f), rel=1e-6)
    # about 1e-6 per non-zero singular value (3e-6 here; float32 result, hence the tolerance)
    assert exact - got == pytest.approx(3e-6, rel=0.05)
    assert effective_rank(f, exponentiate=True, log_eps=1e-6).item() == pytest.approx(
        math.exp(official), rel=1e-6
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_features_are_refused(bad):
    f, y = sparse_features(n=40, d=8, seed=2)
    f[3, 4] = bad
    f[9, 6] = bad
    msg = "features contain 2 non-finite values .*: the model diverged; "
    for fn in (
        lambda: class_consistency(f, y),
        lambda: semantic_entropy(f, y, "sum"),
        lambda: effective_rank(f),
        lambda: orthogonality(f),
    ):
        with pytest.raises(ValueError, match=msg):
            fn()


@pytest.mark.parametrize("shift", [1.3, -1.0])  # sparse codes, and dense signed features
def test_gram_matrix_equals_the_full_product(shift):
    from bayesncl.metrics import gram_matrix

    g = torch.Generator().manual_seed(0)
    f = torch.randn(500, 96, generator=g) - shift
    f = torch.relu(f) if shift > 0 else f
    f[:, 5] = 0.0  # a dead dimension
    got = gram_matrix(f)
    assert got.dtype == torch.float32 and torch.equal(got, got.T)
    torch.testing.assert_close(got.double(), f.double().T @ f.double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gram_matrix(f[:, 10:20].T.T), got[10:20, 10:20])  # a strided view


def test_effective_rank_matches_float64_singular_values():
    from bayesncl.metrics.interpretability import effective_rank_from_gram

    g = torch.Generator().manual_seed(1)
    f = torch.relu(torch.randn(2000, 128, generator=g) - 0.5)
    s = torch.linalg.svdvals(f.double())
    p = s / s.sum()
    exact = -(p * p.log()).sum()
    for dtype in (torch.float64, torch.float32):
        got = effective_rank_from_gram(f.T @ f, dtype=dtype)
        assert got.dtype == torch.float32  # the value is returned as float32 either way
        assert abs(float(got) - float(exact)) < 1e-5
