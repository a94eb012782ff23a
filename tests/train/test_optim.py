import math

import pytest
import torch
from torch import nn

from bayesncl.train.optim import (
    OptimConfig,
    make_optimizer,
    make_scheduler,
    param_groups,
    warmup_cosine,
)


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10, 0.01, 0.0) == pytest.approx(0.01)
    assert warmup_cosine(5, 100, 10, 0.0, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(10, 100, 10, 0.0, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 0.0, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10, 0.0, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(3, 100, 0, 0.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.03)))


def test_param_groups_split_decay():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    groups = param_groups({"backbone": (net, 0.5, 1e-4)})
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["weight_decay"] == 1e-4 and len(by_name["backbone"]["params"]) == 1
    assert (
        by_name["backbone.no_decay"]["weight_decay"] == 0.0
        and len(by_name["backbone.no_decay"]["params"]) == 3
    )


def test_lars_skips_adaptation_for_no_decay_groups():
    w = nn.Parameter(torch.ones(4, 4))
    b = nn.Parameter(torch.ones(4))
    cfg = OptimConfig(momentum=0.0, lars_eta=0.02)
    opt = make_optimizer(
        cfg,
        [
            {"params": [w], "lr": 1.0, "weight_decay": 1e-4},
            {"params": [b], "lr": 1.0, "weight_decay": 0.0},
        ],
    )
    w.grad = torch.full((4, 4), 10.0)
    b.grad = torch.full((4,), 10.0)
    opt.step()
    torch.testing.assert_close(b.detach(), torch.full((4,), -9.0))  # plain SGD step
    # trust ratio eta ||w|| / (||g|| + wd ||w||) = 0.02 * 4 / (40 + 4e-4), clipped at lr
    trust = 0.02 * 4 / (40 + 1e-4 * 4)
    torch.testing.assert_close(
        w.detach(), torch.full((4, 4), 1 - trust * (10 + 1e-4)), rtol=1e-5, atol=1e-6
    )


def test_scheduler_groups_share_shape_with_own_base():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    cfg = OptimConfig(name="sgd", warmup_epochs=1, warmup_start_lr=0.0)
    opt = make_optimizer(cfg, [{"params": [a], "lr": 0.4}, {"params": [b], "lr": 0.1}])
    sched = make_scheduler(opt, cfg, total_steps=20, steps_per_epoch=10)
    lrs = []
    for _ in range(20):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert lrs[0] == [0.0, 0.0]
    assert lrs[10] == pytest.approx([0.4, 0.1])
    assert lrs[15][0] / lrs[15][1] == pytest.approx(4.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": 0.0}, "optim.lr"),
        ({"gate_lr": -1.0}, "optim.gate_lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_optim_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimConfig(**kwargs)


def test_step_schedule_decays_at_the_given_epochs():
    cfg = OptimConfig(
        name="sgd", lr=1.0, warmup_epochs=0, schedule="step", decay_at=(0.5, 0.75), decay_rate=0.1
    )
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = make_scheduler(opt, cfg, total_steps=40, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[19] == 1.0 and lrs[20] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.01)
    with pytest.raises(ValueError, match=r"needs optim\.decay_at"):
        OptimConfig(schedule="step")


def test_rates_follow_the_linear_rule_and_the_gate_keeps_its_own():
    """The one rule both Lightning modules use: lr x batch/256; the gate's rate is unscaled
    (official) unless scale_gate_lr, and follows the scaled lr when gate_lr is None."""
    cfg = OptimConfig(lr=0.4, gate_lr=0.1)
    assert cfg.lr_scale(512) == 2.0 and cfg.gate_rate(2.0) == 0.1
    assert OptimConfig(gate_lr=0.1, scale_gate_lr=True).gate_rate(2.0) == 0.2
    assert OptimConfig(lr=0.4, gate_lr=None).gate_rate(2.0) == 0.8
    assert OptimConfig(lr_scaling="none").lr_scale(512) == 1.0
