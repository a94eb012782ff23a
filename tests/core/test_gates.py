import math

import pytest
import torch
from torch.distributions import Bernoulli, kl_divergence

from bayesncl.core.gates import (
    BayesianGate,
    GateConfig,
    bernoulli_kl,
    logistic_noise,
    make_gate_head,
    official_gumbel_noise,
    sample_mask,
)


def test_ste_forward_is_hard_and_gradient_reaches_alpha():
    logits = torch.randn(16, 8, requires_grad=True)
    cfg = GateConfig(temperature=2.0, threshold=0.5)
    mask = sample_mask(logits, cfg, training=True)
    assert set(mask.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(mask.detach(), (logits.detach() > 0).float())
    mask.sum().backward()
    alpha = torch.sigmoid(logits.detach() / 2.0)
    # d mask / d alpha = 1, so d mask / d logit = alpha (1 - alpha) / T
    torch.testing.assert_close(logits.grad, alpha * (1 - alpha) / 2.0)


def test_threshold_is_honoured():
    logits = torch.tensor([[-0.1, 0.1, 1.0, 2.0]])
    cfg = GateConfig(threshold=0.7)  # sigmoid(l) > 0.7  <=>  l > 0.847
    torch.testing.assert_close(
        sample_mask(logits, cfg, training=False), torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    )


def test_soft_mode_mask_is_alpha_and_trainable():
    logits = torch.randn(4, 6, requires_grad=True)
    cfg = GateConfig(mode="soft", temperature=0.5)
    mask = sample_mask(logits, cfg, training=True)
    torch.testing.assert_close(mask, torch.sigmoid(logits / 0.5))
    mask.sum().backward()
    assert logits.grad.abs().sum() > 0


def test_official_gumbel_noise_matches_the_spec():
    torch.manual_seed(0)
    eps = official_gumbel_noise(torch.empty(200_000))
    lower = -math.log(-math.log(1e-4) + 1e-4)  # -2.22 at u = 0
    assert eps.min() >= lower - 1e-4
    assert abs(eps.mean().item() - 0.5772) < 0.02  # a single Gumbel sample: mean = Euler's gamma


def test_logistic_noise_is_symmetric():
    torch.manual_seed(0)
    g = logistic_noise(torch.empty(200_000))
    assert abs(g.mean().item()) < 0.03
    assert abs(g.var().item() - math.pi**2 / 3) < 0.1


@pytest.mark.parametrize("mode", ["gumbel", "logistic"])
def test_noisy_gates_are_stochastic_in_training_and_deterministic_in_eval(mode):
    torch.manual_seed(0)
    logits = torch.zeros(64, 32)
    cfg = GateConfig(mode=mode)
    a = sample_mask(logits, cfg, training=True)
    b = sample_mask(logits, cfg, training=True)
    assert not torch.equal(a, b)
    e1 = sample_mask(logits + 0.01, cfg, training=False)
    assert torch.equal(e1, torch.ones_like(e1))  # deterministic, no noise


def test_gumbel_opens_more_gates_than_logistic_at_zero_logits():
    torch.manual_seed(0)
    logits = torch.full((1000, 64), -0.3)
    gs = sample_mask(logits, GateConfig(mode="gumbel"), training=True).mean()
    lg = sample_mask(logits, GateConfig(mode="logistic"), training=True).mean()
    assert gs > lg + 0.05  # the official noise is positively biased (mean +0.577)


def test_kl_matches_torch_distributions_inside_the_clamp():
    logits = torch.tensor([[-2.0, -0.5, 0.0, 1.0, 3.0], [0.3, -1.2, 2.2, -3.0, 0.7]])
    for rho in (0.2, 0.8):
        expected = (
            kl_divergence(Bernoulli(logits=logits), Bernoulli(probs=torch.tensor(rho)))
            .sum(1)
            .mean()
        )
        torch.testing.assert_close(bernoulli_kl(logits, rho), expected)
        torch.testing.assert_close(bernoulli_kl(logits, rho, clamp=None), expected)


def test_kl_known_value_and_temperature():
    # alpha = 0.5 vs rho = 0.8: 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2)
    value = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    torch.testing.assert_close(bernoulli_kl(torch.zeros(3, 4), 0.8), torch.tensor(4 * value))
    # alpha = sigmoid(l / T): l = 2, T = 2 equals l = 1, T = 1
    torch.testing.assert_close(
        bernoulli_kl(torch.full((1, 3), 2.0), 0.3, temperature=2.0),
        bernoulli_kl(torch.ones(1, 3), 0.3),
    )


def test_official_clamp_cuts_the_gradient_at_extreme_logits():
    logits = torch.tensor([[10.0, -10.0, 0.0]], requires_grad=True)
    bernoulli_kl(logits, 0.8).backward()
    assert logits.grad[0, 0] == 0 and logits.grad[0, 1] == 0 and logits.grad[0, 2] != 0
    logits.grad = None
    bernoulli_kl(logits, 0.8, clamp=None).backward()
    assert (logits.grad != 0).all()
    clamped = bernoulli_kl(torch.tensor([[50.0]]), 0.8)
    torch.testing.assert_close(clamped, bernoulli_kl(torch.tensor([[math.log(0.99 / 0.01)]]), 0.8))


def test_kl_pulls_alpha_toward_rho():
    logits = torch.zeros(2, 3, requires_grad=True)
    bernoulli_kl(logits, 0.8).backward()
    assert (logits.grad < 0).all()  # gradient descent raises alpha toward 0.8


@pytest.mark.parametrize("depth,n_linear", [(1, 1), (2, 2), (3, 3)])
def test_head_depths(depth, n_linear):
    head = make_gate_head(12, 5, 8, depth)
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert len(linears) == n_linear
    assert linears[0].in_features == 12 and linears[-1].out_features == 5
    if depth == 3:
        assert linears[1].out_features == 4  # hidden_half
    assert head(torch.randn(3, 12)).shape == (3, 5)


def test_gate_module_eval_is_deterministic_and_detaches():
    torch.manual_seed(0)
    gate = BayesianGate(6, 4, GateConfig(mode="gumbel"), hidden_dim=8).eval()
    h = torch.randn(5, 6, requires_grad=True)
    a, b = gate(h), gate(h)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.mask, (a.alpha > 0.5).float())
    (a.logits.sum() + gate.kl(a.logits)).backward()
    assert h.grad is None  # detach=True: nothing reaches h


def test_gate_without_detach_passes_gradient_to_h():
    gate = BayesianGate(6, 4, GateConfig(detach=False), hidden_dim=8)
    h = torch.randn(5, 6, requires_grad=True)
    gate.kl(gate(h).logits).backward()
    assert h.grad is not None and h.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"temperature": 0.0}, r"temperature=0.0 must be > 0"),
        ({"temperature": -1.0}, r"temperature"),
        ({"prior": 0.0}, r"prior \(rho\)=0.0 must be in \(0, 1\)"),
        ({"prior": 1.5}, r"prior"),
        ({"kl_weight": -1e-3}, r"kl_weight \(lambda\)=-0.001 must be >= 0"),
        ({"kl_weight": float("nan")}, r"kl_weight"),
        ({"threshold": 1.0}, r"threshold"),
        ({"mode": "hard"}, r"mode='hard'.*ste, gumbel, logistic, soft"),
        ({"head_depth": 4}, r"head_depth=4 must be 1, 2 or 3"),
        ({"kl_clamp": (0.5, 0.2)}, r"kl_clamp"),
    ],
)
def test_bad_gate_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GateConfig(**kwargs)
