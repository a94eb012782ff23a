import pytest
import torch
from torch import nn

from bayesncl.core.config import MethodConfig
from bayesncl.core.gates import GateConfig
from bayesncl.core.nonneg import NON_NEGATIVE
from bayesncl.core.objectives import Batch
from bayesncl.core.pipeline import NCLHead, normalize_rows
from bayesncl.core.presets import PRESETS, method_preset


def tiny(method, in_dim=6, hidden=16, out=8):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(10, in_dim), nn.ReLU())
    return backbone, NCLHead(in_dim, hidden, out, method)


def batch(n=6):
    torch.manual_seed(1)
    return torch.randn(2 * n, 10), torch.arange(n).repeat(2)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs_and_is_finite(name):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(10, 6), nn.ReLU())
    head = NCLHead(6, 16, 40, name, num_classes=3)
    x, idx = batch()
    rep = head(backbone(x))
    terms = head.loss(rep, Batch(idx, labels=idx % 3))
    assert torch.isfinite(terms.total)
    terms.total.backward()
    gated = PRESETS[name].gate is not None
    assert (rep.mask is not None) == gated
    if PRESETS[name].nonneg in NON_NEGATIVE:
        assert (rep.output >= 0).all()


def test_path_order_matches_spec():
    backbone, head = tiny("bayesncl")
    x, _ = batch()
    h = backbone(x)
    rep = head(h)
    z = head.projector(h)
    torch.testing.assert_close(rep.z, z)
    torch.testing.assert_close(rep.features, torch.relu(z))
    torch.testing.assert_close(rep.normalized, nn.functional.normalize(torch.relu(z), dim=1))
    expected = nn.functional.normalize(rep.normalized * rep.mask, dim=1)
    torch.testing.assert_close(rep.output, expected)


def backbone_grad(head_method, loss_fn, detach_mask=False):
    backbone, head = tiny(head_method)
    x, idx = batch()
    h = backbone(x)
    rep = head(h)
    if detach_mask:
        rep.output = normalize_rows(rep.normalized * rep.mask.detach())
    loss_fn(head, rep, idx).backward()
    return torch.cat(
        [
            p.grad.flatten() if p.grad is not None else torch.zeros(p.numel())
            for p in backbone.parameters()
        ]
    )


def kl_only(head, rep, idx):
    return head.gate.kl(rep.logits)


def nce_only(head, rep, idx):
    return head.loss(rep, idx).terms["nt_xent"]


def test_detach_blocks_every_gate_path_gradient_to_the_backbone():
    assert backbone_grad("bayesncl", kl_only).abs().sum() == 0
    # InfoNCE through the mask: same backbone gradient as with the mask detached by hand
    torch.testing.assert_close(
        backbone_grad("bayesncl", nce_only), backbone_grad("bayesncl", nce_only, detach_mask=True)
    )


def test_without_detach_the_gate_path_reaches_the_backbone():
    assert backbone_grad("bayesncl-nodetach", kl_only).abs().sum() > 0
    full = backbone_grad("bayesncl-nodetach", nce_only)
    masked = backbone_grad("bayesncl-nodetach", nce_only, detach_mask=True)
    assert not torch.allclose(full, masked)


def test_all_gates_closed_gives_no_nan():
    _, head = tiny("bayesncl")
    with torch.no_grad():
        last = head.gate.head[-1]
        last.weight.zero_()
        last.bias.fill_(-20.0)  # every alpha ~ 0: every gate closed
    h = torch.rand(12, 6)
    rep = head(h)
    assert rep.mask.sum() == 0
    terms = head.loss(rep, torch.arange(6).repeat(2))
    terms.total.backward()
    assert torch.isfinite(terms.total)
    for p in head.parameters():
        # F.normalize would multiply these by 1e12 (see normalize_rows)
        assert p.grad is None or p.grad.abs().max() < 1e3


def test_normalize_rows_matches_f_normalize_and_zero_rows_get_no_gradient():
    x = torch.randn(4, 5)
    x[2] = 0.0
    x.requires_grad_(True)
    out = normalize_rows(x)
    torch.testing.assert_close(out, nn.functional.normalize(x, dim=1))
    out.sum().backward()
    assert torch.equal(x.grad[2], torch.zeros(5))
    assert torch.isfinite(x.grad).all()


def test_soft_gate_at_eval_uses_alpha():
    _, head = tiny("bayesncl")
    head.eval()
    h = torch.rand(4, 6)
    rep = head(h, soft_gate=True)
    torch.testing.assert_close(rep.mask, rep.alpha)


def test_topk_in_path_and_validation():
    _, head = tiny(MethodConfig(nonneg="relu", topk_k=3))
    rep = head(torch.rand(5, 6))
    assert ((rep.features > 0).sum(1) <= 3).all()
    with pytest.raises(ValueError, match=r"topk_k=9 must be an integer in 1\.\.8"):
        NCLHead(6, 16, 8, MethodConfig(nonneg="relu", topk_k=9))


def test_kl_weight_enters_total():
    _, head = tiny(method_preset("bayesncl", gate={"kl_weight": 0.5}))
    rep = head(torch.rand(8, 6))
    t = head.loss(rep, torch.arange(4).repeat(2))
    torch.testing.assert_close(t.total, t.terms["nt_xent"] + 0.5 * t.terms["kl"])


def test_preset_overrides_and_errors():
    assert method_preset("bayesncl-gs").gate.mode == "gumbel"
    assert method_preset("ncl", nonneg="relu").nonneg == "relu"
    assert method_preset("bayesncl-head3").gate.head_depth == 3
    assert method_preset("bayesncl-nodetach").gate.detach is False
    with pytest.raises(ValueError, match="method='simclr' is not a preset"):
        method_preset("simclr")
    with pytest.raises(ValueError, match="has no gate"):
        method_preset("ncl", gate={"prior": 0.5})
    with pytest.raises(ValueError, match="unknown method settings"):
        method_preset("ncl", temperature=0.1)
    assert method_preset("ncl", tau=0.1).tau == 0.1
    with pytest.raises(ValueError, match="prior"):
        method_preset("bayesncl", gate={"prior": 1.0})
    with pytest.raises(ValueError, match=r"method\.tau=0"):
        MethodConfig(tau=0)
    assert GateConfig().kl_weight == 3e-5
