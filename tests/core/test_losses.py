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
    good = LossTerms.single("nt_xent", torch.tensor(1.0)).add("kl", torch.tensor(0.0), 0.5)
    check_finite(good)
    with pytest.raises(FloatingPointError, match=r"nt_xent loss is nan.*temperature"):
        check_finite(LossTerms.single("nt_xent", torch.tensor(float("nan"))))
    with pytest.raises(FloatingPointError, match=r"kl loss is inf.*gate\.prior"):
        check_finite(
            LossTerms.single("nt_xent", torch.tensor(1.0)).add("kl", torch.tensor(float("inf")))
        )


def test_loss_terms_add_weights_the_total_and_refuses_duplicates():
    t = LossTerms.single("a", torch.tensor(2.0)).add("b", torch.tensor(3.0), weight=0.5)
    assert t.total.item() == 3.5 and set(t.terms) == {"a", "b"} and t.terms["b"].item() == 3.0
    with pytest.raises(ValueError, match="defined twice"):
        t.add("a", torch.tensor(1.0))
    with pytest.raises(ValueError, match="defined twice"):
        t + LossTerms.single("b", torch.tensor(1.0))


def test_nt_xent_runs_in_float32_under_autocast():
    """The docstring's promise: bf16 autocast must not round the logits (design-notes #9)."""
    torch.manual_seed(0)
    u = F.normalize(torch.randn(64, 32), dim=1)
    idx = torch.arange(32).repeat(2)
    exact = nt_xent(u, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = nt_xent(u.bfloat16(), idx)
    assert got.dtype == torch.float32
    # the only difference left is the bf16 rounding of the *inputs*, not of the logits
    assert got.item() == pytest.approx(nt_xent(u.bfloat16().float(), idx).item(), abs=1e-6)
    assert got.item() == pytest.approx(exact.item(), abs=2e-2)
