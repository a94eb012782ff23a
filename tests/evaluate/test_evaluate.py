import json

import numpy as np
import pytest
import torch

from bayesncl.cli import main
from bayesncl.evaluate.checkpoint import CheckpointError, load_pretrained
from bayesncl.evaluate.extract import extract
from bayesncl.metrics import class_consistency


def test_missing_corrupt_and_foreign_checkpoints(tmp_path, tiny_runs):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_pretrained(tmp_path / "bad.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not a bayesncl pretraining checkpoint"):
        load_pretrained(tmp_path / "other.ckpt")
    ckpt = torch.load(tiny_runs["ncl"], weights_only=True)
    ckpt["hyper_parameters"]["proj_output_dim"] = 99  # weights from another model
    torch.save(ckpt, tmp_path / "mismatch.ckpt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_pretrained(tmp_path / "mismatch.ckpt")


def test_cli_reports_checkpoint_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_writes_metrics_features_and_figures(tmp_path, tiny_runs):
    out = tmp_path / "eval"
    npz = tmp_path / "f.npz"
    args = [
        "evaluate",
        str(tiny_runs["bayesncl"]),
        "--out-dir",  # dashes and underscores are both accepted
        str(out),
        "--save-features",
        str(npz),
        "--probe_epochs",
        "5",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("consistency", "entropy_sum", "entropy_mean", "entropy_frequency", "sparsity", "active_dims",
                "activation_ratio", "orthogonality", "effective_rank", "nonneg_ratio", "retrieval_p1",
                "linear_top1", "linear_top5", "knn_top1", "gate_open", "gmacs_pair", "step_seconds"):  # fmt: skip
        assert key in metrics, key
    saved = np.load(npz)
    f, y = torch.from_numpy(saved["features"]), torch.from_numpy(saved["labels"])
    assert f.shape[0] == metrics["num_eval_samples"] == 360
    assert class_consistency(f, y).item() == pytest.approx(metrics["consistency"], rel=1e-6)
    assert (f >= 0).all()
    for png in ("top_activated.png", "correlation.png", "gate_vs_frequency.png"):
        assert (out / png).stat().st_size > 1000
    assert "| Cons. (%) |" in (out / "metrics.md").read_text()


def test_extraction_leaves_the_model_untouched_in_both_bn_modes(tiny_runs):
    model, _ = load_pretrained(tiny_runs["ncl"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(40, 1, 8, 8)
    loader = [
        (x[:20], torch.zeros(20, dtype=torch.long)),
        (x[20:], torch.ones(20, dtype=torch.long)),
    ]
    a = extract(model.encoder, loader, "eval")
    b = extract(model.encoder, loader, "train")
    assert not torch.allclose(a.h, b.h)  # batch statistics differ from running statistics
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_cl_consistency_is_at_chance_level(tiny_runs, tmp_path):
    """Dense CL features: every sample activates every dimension, so consistency = the largest
    class share of the evaluation set (exactly 1/C when balanced; the papers' 10.00)."""
    out = tmp_path / "cl"
    assert (
        main(
            [
                "evaluate",
                str(tiny_runs["cl"]),
                "--out_dir",
                str(out),
                "--probe",
                "false",
                "--figures",
                "false",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    from bayesncl.train.datamodule import SSLDataModule

    labels = torch.tensor([y for _, y in SSLDataModule("digits").load(False)])
    chance = labels.bincount().max().item() / len(labels)
    assert m["consistency"] == pytest.approx(chance, abs=1e-6)
    assert m["sparsity"] == 0.0 and m["activation_ratio"] == 1.0


def test_official_probe_protocol_through_the_cli(tmp_path, tiny_runs):
    out = tmp_path / "official"
    args = ["evaluate", str(tiny_runs["ncl"]), "--out_dir", str(out), "--probe_protocol", "cifar",
            "--figures", "false", "--cost", "false", "--select_dims", "[4]"]  # fmt: skip
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["linear_protocol"] == "cifar" and 0.0 <= m["linear_top1"] <= 1.0
