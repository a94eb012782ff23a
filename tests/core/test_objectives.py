"""Known answers for the NCL paper's other objectives (ncl-extras-spec §2-3)."""

import math

import pytest
import torch
import torch.nn.functional as F

from bayesncl.core import (
    PRESETS,
    Batch,
    NCLHead,
    method_preset,
    nonneg_cross_entropy,
    spectral_loss,
)


def test_nce_with_identity_weights_is_cross_entropy_values_and_gradients():
    """On a ReLU-terminated backbone, relu features change nothing: with identity weights NCE *is*
    CE, values and gradients (why NCE must rectify the weights, spec §2.2)."""
    torch.manual_seed(0)
    pre = torch.randn(9, 5, requires_grad=True)  # last pre-activation of the backbone
    w = torch.randn(4, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0])
    got = nonneg_cross_entropy(torch.relu(pre), w, y, feature_map="relu", weight_map="identity")
    (g_pre, g_w) = torch.autograd.grad(got, (pre, w))
    ref = F.cross_entropy(torch.relu(pre) @ w.T, y)
    (r_pre, r_w) = torch.autograd.grad(ref, (pre, w))
    assert got.item() == ref.item()
    assert torch.equal(g_pre, r_pre) and torch.equal(g_w, r_w)


def test_nce_with_relu_weights_has_nonneg_logits_and_known_value():
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    w = torch.tensor([[1.0, -3.0], [-1.0, 1.0]])  # relu(W) = [[1, 0], [0, 1]]
    y = torch.tensor([0, 1])
    # logits = [[1, 0], [0, 2]]: CE = mean(log(1 + e^-1), log(1 + e^-2))
    want = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-2))) / 2
    assert nonneg_cross_entropy(f, w, y).item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("name", ["ce", "nce", "ce-mlp", "nce-mlp"])
def test_supervised_presets_run_on_the_one_path(name):
    torch.manual_seed(0)
    head = NCLHead(6, 16, 8, name, num_classes=3)
    rep = head(torch.relu(torch.randn(5, 6)))
    assert rep.output.shape[1] == (6 if not PRESETS[name].projector else 8)
    logits = head.objective.logits(rep)
    if name.startswith("nce"):
        assert (logits >= 0).all()
    terms = head.loss(rep, Batch(torch.arange(5), labels=torch.tensor([0, 1, 2, 0, 1])))
    assert set(terms.terms) == {"ce"} and torch.isfinite(terms.total)
    assert "objective" in head.param_groups(0.1, 0.0, 0.1)


def closed_form(z1, z2, mu):
    """Spec §3.2 written out by loops, after clipping."""
    r = mu**0.5
    z1 = [z * min(1.0, r / z.norm()) if z.norm() >= r else z for z in z1]
    z2 = [z * min(1.0, r / z.norm()) if z.norm() >= r else z for z in z2]
    b = len(z1)
    part1 = -2.0 / b * sum(float(z1[i] @ z2[i]) for i in range(b))
    part2 = sum(float(z1[i] @ z2[j]) ** 2 for i in range(b) for j in range(b) if i != j)
    return (part1 + part2 / (b * (b - 1))) / mu


def test_spectral_loss_equals_its_closed_form_on_a_hand_made_batch():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 3.0], [0.5, 0.5]], dtype=torch.float64)
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    # clipped to norm 1 (mu = 1): z1[1] -> (0, 1), z2[2] -> (1, 0); part1 = -2/3 (1 + 1 + 0.5);
    # squared cross products off the diagonal: (0, 1 | 0, 0 | 0.25, 0.25) -> part2 = 1.5 / 6
    want = -2 / 3 * 2.5 + 1.5 / 6
    assert spectral_loss(z1.float(), z2.float(), 1.0).item() == pytest.approx(want, abs=1e-6)
    got = spectral_loss(z1.float(), z2.float(), 1.0).item()
    assert got == pytest.approx(closed_form(z1, z2, 1.0), abs=1e-6)
    torch.manual_seed(0)
    a, b = torch.randn(7, 4), torch.randn(7, 4)
    for mu in (1.0, 10.0):
        assert spectral_loss(a, b, mu).item() == pytest.approx(closed_form(a, b, mu), abs=1e-5)


def test_nonneg_spectral_terms_are_nonneg():
    torch.manual_seed(1)
    head = NCLHead(6, 16, 8, method_preset("nscl"))
    rep = head(torch.randn(8, 6))
    assert (rep.features >= 0).all()
    terms = head.loss(rep, torch.arange(4).repeat(2))
    assert set(terms.terms) == {"spectral"} and torch.isfinite(terms.total)
    with pytest.raises(ValueError, match="exactly 2 views"):
        head.loss(rep, torch.arange(8))
