"""MMNCL core (ncl-extras-spec §4.2): CLIP's symmetric InfoNCE and the two-tower model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bayesncl.core import MethodConfig, clip_loss
from bayesncl.core.multimodal import LearnableTemperature, TwoTower


def hand_clip(u: list[list[float]], v: list[list[float]], tau: float) -> float:
    """1/2 [mean_i -log softmax_j(s_ij)[i] + mean_j -log softmax_i(s_ij)[j]], by hand."""
    n = len(u)
    s = [
        [sum(a * b for a, b in zip(u[i], v[j], strict=True)) / tau for j in range(n)]
        for i in range(n)
    ]
    rows = [-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)]
    cols = [-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)]
    return 0.5 * (sum(rows) / n + sum(cols) / n)


U = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
V = [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]


def test_clip_loss_equals_the_hand_computed_value():
    # u = I, so s_ij = v_j[i] / tau: s = [[1, .6, 0], [0, .8, .6], [0, 0, .8]] / 0.5
    expected = hand_clip(U, V, 0.5)
    # the same number written out for row 0 and column 0, as a check of hand_clip itself
    row0 = -2.0 + math.log(math.exp(2.0) + math.exp(1.2) + math.exp(0.0))
    col0 = -2.0 + math.log(math.exp(2.0) + math.exp(0.0) + math.exp(0.0))
    assert row0 == pytest.approx(0.4604, abs=1e-4) and col0 == pytest.approx(0.2395, abs=1e-4)
    got = clip_loss(torch.tensor(U), torch.tensor(V), 0.5)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.48674, abs=1e-5)  # (0.4755 + 0.4979) / 2


def test_clip_loss_is_symmetric_in_the_two_modalities():
    torch.manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    v = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    torch.testing.assert_close(clip_loss(u, v, 0.3), clip_loss(v, u, 0.3))


def test_perfect_alignment_at_low_temperature_gives_zero_loss():
    u = torch.eye(5)
    assert clip_loss(u, u.clone(), 0.01).item() < 1e-6
    assert clip_loss(u, u.flip(0), 0.01).item() > 10  # mismatched pairs: large loss


def test_clip_loss_runs_in_float32_under_autocast():
    u = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = clip_loss(u, u.roll(1, 0), 0.2)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, clip_loss(u, u.roll(1, 0), 0.2))


def test_clip_loss_rejects_bad_inputs():
    with pytest.raises(ValueError, match="temperature"):
        clip_loss(torch.eye(2), torch.eye(2), 0.0)
    with pytest.raises(ValueError, match="equal shape"):
        clip_loss(torch.eye(2), torch.eye(3), 0.2)


def test_learnable_temperature_starts_at_clip_value_and_is_capped():
    t = LearnableTemperature()
    assert t().item() == pytest.approx(0.07)
    with torch.no_grad():
        t.log_scale.fill_(10.0)
    assert t.scale().item() == pytest.approx(100.0)
    assert t().item() == pytest.approx(0.01)


def make_model(temperature: float | str = "learnable") -> TwoTower:
    torch.manual_seed(0)
    return TwoTower(
        nn.Sequential(nn.Linear(10, 12), nn.ReLU()),
        12,
        nn.Sequential(nn.Linear(6, 8), nn.ReLU()),
        8,
        method_x="bayesncl",
        method_y="ncl-topk",
        hidden_dim=16,
        out_dim=40,
        temperature=temperature,
    )


def test_two_tower_representations_are_non_negative_and_loss_has_gate_terms():
    model = make_model(0.2)
    x, y = torch.randn(5, 10), torch.randn(5, 6)
    rep_x, rep_y = model(x, y)
    assert rep_x.output.shape == rep_y.output.shape == (5, 40)
    assert (rep_x.output >= 0).all() and (rep_y.output >= 0).all()
    assert ((rep_y.features > 0).sum(1) <= 32).all()  # ncl-topk keeps 32 of 40
    terms = model.loss(x, y)
    assert set(terms.terms) == {"clip", "x_kl"}  # the y tower has no gate
    kl_weight = model.tower_x.head.method.gate.kl_weight
    torch.testing.assert_close(terms.total, terms.terms["clip"] + kl_weight * terms.terms["x_kl"])
    torch.testing.assert_close(terms.terms["clip"], clip_loss(rep_x.output, rep_y.output, 0.2))


def test_two_tower_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        make_model(-1.0)
    with pytest.raises(ValueError, match="differ in width"):
        no_projector = MethodConfig(projector=False, nonneg="relu")
        TwoTower(nn.Identity(), 7, nn.Identity(), 9, method_x=no_projector)


def ddp_worker(rank, world, rdzv, out_path):
    dist.init_process_group("gloo", init_method=f"file://{rdzv}", rank=rank, world_size=world)
    model = make_model()
    torch.manual_seed(1)
    x, y = torch.randn(8, 10), torch.randn(8, 6)
    ddp = DistributedDataParallel(model)
    mine = slice(rank * 4, (rank + 1) * 4)
    rep_x, rep_y = ddp(x[mine], y[mine])
    loss = model.loss_of(rep_x, rep_y).total
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    if rank == 0:
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        torch.save({"loss": total / world, "grads": grads}, out_path)
    # both ranks reach the teardown together: a rank that destroys its group while the other
    # still uses it can abort gloo ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def test_two_rank_clip_loss_gradients_equal_full_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "rdzv"), str(out)), nprocs=2, join=True)
    got = torch.load(out)
    model = make_model()
    torch.manual_seed(1)
    x, y = torch.randn(8, 10), torch.randn(8, 6)
    loss = model.loss(x, y).total
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    expected = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert set(got["grads"]) == set(expected)
    assert "temperature.log_scale" in expected
    for name, grad in expected.items():
        torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-7, msg=name)
