import math

import pytest
import torch
import torch.nn.functional as F

from bayesncl.core.losses import LossTerms, check_finite, nt_xent


def loop_nt_xent(u, indexes, tau):
    """Straightforward per-anchor implementation of spec §1.2."""
    total = 0.0
    n = u.shape[0]
    for i in range(n):
        pos = neg = 0.0
        for j in range(n):
            if j == i:
                continue
            s = math.exp(float(u[i] @ u[j]) / tau)
            if indexes[j] == indexes[i]:
                pos += s
            else:
                neg += s
        total += -math.log(pos / (pos + neg))
    return total / n


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("tau", [0.1, 0.2, 0.5])
def test_nt_xent_equals_loop(views, tau):
    torch.manual_seed(views)
    n = 7
    u = F.normalize(torch.randn(views * n, 5, dtype=torch.float64), dim=1)
    idx = torch.arange(n).repeat(views)
    got = nt_xent(u, idx, tau)
    assert got.item() == pytest.approx(loop_nt_xent(u, idx, tau), rel=1e-5)


def test_nt_xent_is_order_invariant_and_differentiable():
    torch.manual_seed(0)
    u = F.normalize(torch.randn(12, 4), dim=1).requires_grad_(True)
    idx = torch.arange(6).repeat(2)
    perm = torch.randperm(12)
    torch.testing.assert_close(nt_xent(u, idx), nt_xent(u[perm], idx[perm]))
    nt_xent(u, idx).backward()
    assert torch.isfinite(u.grad).all()


def test_zero_rows_do_not_produce_nan():
    u = F.normalize(torch.randn(8, 4), dim=1)
    u[0] = 0.0
    u[4] = 0.0
    u.requires_grad_(True)
    loss = nt_xent(u, torch.arange(4).repeat(2))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(u.grad).all()


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.zeros(2, 2), torch.zeros(2), 0.0)


def test_check_finite_names_the_term():
    good = LossTerms(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0))
    check_finite(good)
    with pytest.raises(FloatingPointError, match="the nce loss is nan"):
        check_finite(LossTerms(torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(0.0)))
    with pytest.raises(FloatingPointError, match="the kl loss is inf"):
        check_finite(LossTerms(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(float("inf"))))
