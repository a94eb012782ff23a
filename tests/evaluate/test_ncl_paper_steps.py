"""`evaluate --ood --selection --sepin` end to end on a tiny encoder (digits, no checkpoint)."""

from __future__ import annotations

import pytest
import torch

from bayesncl.core.presets import method_preset
from bayesncl.data.splits import eval_splits
from bayesncl.evaluate.run import EvalConfig, run
from bayesncl.models.backbones import convnet
from bayesncl.models.encoder import Encoder


def test_the_ncl_paper_evaluations_run_and_report_every_key(tmp_path):
    torch.manual_seed(0)
    net, dim = convnet(1, 8)
    enc = Encoder(net, dim, method_preset("ncl"), 16, 8).eval()
    config = EvalConfig(probe_epochs=2, train_limit=128, figures=False, cost=False, knn_k=10,
                        ood=True, ood_limit=24, ood_severities=[1, 5], selection=True,
                        sepin=True, sepin_samples=40, sepin_steps=3)  # fmt: skip
    m = run(enc, eval_splits({"dataset": "digits"}), config, tmp_path, num_classes=10)
    assert len(m["ood_detail"]) == 14 * 2 and m["ood_limit"] == 24
    for key in ("clean", "corruption", "noise", "blur", "weather", "digital", "sketch", "stylized"):
        assert 0.0 <= m[f"ood_{key}_top1"] <= 1.0, key
    assert m["ood_corruption_drop"] == pytest.approx(m["ood_clean_top1"] - m["ood_corruption_top1"])
    assert m["fs_keep"] == 2 and m["fs_all_lp_drop"] == 0.0
    for c in ("all", "random", "preactivation", "activation"):
        assert {f"fs_{c}_lp", f"fs_{c}_p10", f"fs_{c}_transfer"} <= set(m), c
    assert "InfoNCE" in m["sepin_estimator"] and "consistency_topm" in m


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("ood_limit", 0, "ood_limit"), ("ood_severities", [0], "1..5"), ("sepin_samples", 1, ">= 2")],
)
def test_invalid_ncl_paper_options_name_the_option(option, value, message):
    with pytest.raises(ValueError, match=message):
        EvalConfig(**{option: value})
