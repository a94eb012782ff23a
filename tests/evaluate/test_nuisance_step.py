"""The evaluation steps w.r.t. a second label (scenes' background)."""

from __future__ import annotations

import torch

from bayesncl.evaluate import steps
from bayesncl.evaluate.extract import Extracted


def _extracted(n: int = 200, seed: int = 0) -> tuple[Extracted, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    background = torch.randint(0, 2, (n,), generator=g)
    out = torch.zeros(n, 6)
    out[torch.arange(n), labels] = 1.0  # dims 0-3: one class each
    out[background == 1, 4] = 1.0  # dim 4: the background
    out[:, 5] = 0.1  # dim 5: everyone
    h = torch.cat([out, torch.randn(n, 2, generator=g) * 0.01], 1)
    mask = torch.ones(n, 6)
    mask[:, 4] = 0.0  # the gate closes the background dimension
    ex = Extracted(h=h, features=out, output=out, labels=labels, mask=mask, alpha=mask)
    return ex, background


def test_nuisance_step_finds_the_background_dimension_and_its_closed_gate(tmp_path) -> None:
    ex, background = _extracted()
    m = steps.nuisance(ex, background, 4, tmp_path, title="fake")
    assert m["nuisance_dims"] == 1  # dim 4 only
    assert m["gate_open_nuisance_dims"] == 0.0 and m["gate_open_class_dims"] == 1.0
    assert (tmp_path / "gate_vs_nuisance.png").is_file()
    assert steps.nuisance(ex, background, 4, None).get("figures_nuisance") is None


def test_nuisance_probe_reads_the_background_off_h_and_v() -> None:
    train, b_train = _extracted(seed=1)
    val, b_val = _extracted(seed=2)
    m = steps.nuisance_probe(train, val, b_train, b_val, epochs=50)
    assert m["nuisance_linear_top1"] > 0.95 and m["nuisance_linear_v_top1"] > 0.95
