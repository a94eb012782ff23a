"""Frequency-aware pieces: the moving frequency, the inverse-frequency similarity, the gate."""

import pytest
import torch

from bayesncl.core import (
    Batch,
    FrequencyEstimate,
    GateConfig,
    MethodConfig,
    NCLHead,
    bernoulli_kl,
    method_preset,
    normalize_rows,
    nt_xent,
)
from bayesncl.core.frequency import FrequencyGate, IPWNTXentObjective


def test_moving_frequency_known_values():
    est = FrequencyEstimate(3, momentum=0.5)
    a = torch.tensor([[1, 0, 0], [1, 1, 0]])
    b = torch.tensor([[1, 0, 0], [0, 0, 0]])
    torch.testing.assert_close(est.update(a), torch.tensor([1.0, 0.5, 0.0]))  # first: the batch
    torch.testing.assert_close(est.update(b), torch.tensor([0.75, 0.25, 0.0]))
    assert set(est.state_dict()) == {"pi", "updates"}  # saved in checkpoints


def test_ipw_similarity_equals_nt_xent_on_reweighted_rows():
    torch.manual_seed(0)
    v = normalize_rows(torch.relu(torch.randn(8, 5)))
    idx = torch.arange(4).repeat(2)
    obj = IPWNTXentObjective(tau=0.2, out_dim=5, beta=1.0, momentum=0.0)

    class Rep:
        output = v

    got = obj(Rep, Batch(idx)).total
    pi = ((v > 0).float().mean(0)).clamp_min(0.01)
    want = nt_xent(normalize_rows(v / pi.sqrt()), idx, 0.2)
    torch.testing.assert_close(got, want)
    # (v_i / sqrt(pi)) . (v_j / sqrt(pi)) = sum_k v_ik v_jk / pi_k: the paper's s_IPW
    plain = IPWNTXentObjective(tau=0.2, out_dim=5, beta=0.0)
    torch.testing.assert_close(plain(Rep, Batch(idx)).total, nt_xent(v, idx, 0.2))
    obj.eval()
    before = obj.frequency.pi.clone()
    obj(Rep, Batch(idx))
    assert torch.equal(obj.frequency.pi, before)  # no update outside training


def test_frequency_gate_closes_always_active_dimensions():
    cfg = GateConfig(kind="frequency", prior=0.8, freq_momentum=0.0, kl_clamp=None)
    gate = FrequencyGate(4, 3, cfg, hidden_dim=8)
    features = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # dim 0 always, dim 1 never on
    gate(torch.randn(2, 4), features)
    torch.testing.assert_close(gate.priors(), torch.tensor([0.0, 0.8, 0.4]))
    logits = torch.zeros(1, 3, requires_grad=True)
    gate.kl(logits).backward()
    assert logits.grad[0, 0] > 0  # KL pulls the always-active dimension closed ...
    assert logits.grad[0, 1] < 0  # ... and a rare one open (rho = 0.8), as the plain gate does
    plain = torch.zeros(1, 3, requires_grad=True)
    bernoulli_kl(plain, 0.8, clamp=None).backward()
    assert (plain.grad < 0).all()


def test_frequency_presets_train_on_the_one_path():
    for name in ("ncl-ipw", "bayesncl-freq"):
        cfg = method_preset(name)
        assert MethodConfig.from_dict(cfg.to_dict()) == cfg
        head = NCLHead(6, 16, 8, cfg)
        rep = head(torch.randn(8, 6))
        terms = head.loss(rep, torch.arange(4).repeat(2))
        assert torch.isfinite(terms.total)
        terms.total.backward()
        assert any("frequency.pi" in k for k in head.state_dict())


def test_bad_frequency_settings():
    with pytest.raises(ValueError, match="freq_momentum"):
        GateConfig(freq_momentum=1.0)
    with pytest.raises(ValueError, match="beta >= 0"):
        IPWNTXentObjective(tau=0.2, out_dim=3, beta=-1)
