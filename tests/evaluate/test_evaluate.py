"""``bayesncl evaluate`` end to end on one tiny digits checkpoint (two training steps)."""

import json

import numpy as np
import pytest
import torch

from bayesncl.cli import main
from bayesncl.data.splits import eval_splits
from bayesncl.evaluate import run as run_module
from bayesncl.evaluate.checkpoint import CheckpointError, load_pretrained
from bayesncl.evaluate.extract import extract
from bayesncl.evaluate.run import EvalConfig, evaluate_checkpoint, run
from bayesncl.metrics import class_consistency
from bayesncl.train.fit import fit

TINY = [
    "--data.dataset", "digits", "--data.batch_size", "64", "--data.num_workers", "0",
    "--model.backbone", "convnet", "--model.backbone_width", "8",
    "--model.proj_hidden_dim", "32", "--model.proj_output_dim", "16",
    "--model.optim.warmup_epochs", "0", "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false", "--trainer.max_steps", "2",
]  # fmt: skip
QUICK = ["--probe_epochs", "3", "--train_limit", "200", "--knn_k", "10", "--cost", "false"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A BayesNCL checkpoint of a two-step digits run."""
    run_dir = tmp_path_factory.mktemp("evalrun") / "bayesncl"
    fit([*TINY, "--model.method", "bayesncl", "--run_dir", str(run_dir)])
    return run_dir / "checkpoints" / "last.ckpt"


def test_missing_corrupt_and_foreign_checkpoints(tmp_path, ckpt):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_pretrained(tmp_path / "bad.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not a bayesncl pretraining checkpoint"):
        load_pretrained(tmp_path / "other.ckpt")
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["proj_output_dim"] = 99  # weights from another model
    torch.save(saved, tmp_path / "mismatch.ckpt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_pretrained(tmp_path / "mismatch.ckpt")


def test_cli_reports_checkpoint_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_pins_its_numbers_to_independent_computations(tmp_path, ckpt):
    out, npz = tmp_path / "eval", tmp_path / "f.npz"
    args = ["evaluate", str(ckpt), "--out-dir", str(out), "--save-features", str(npz), *QUICK]
    assert main(args) == 0  # dashes and underscores are both accepted
    m = json.loads((out / "metrics.json").read_text())
    assert (m["method"], m["dataset"], m["num_eval_samples"]) == ("bayesncl", "digits", 360)
    saved = np.load(npz)
    f, y = torch.from_numpy(saved["features"]), torch.from_numpy(saved["labels"])
    assert f.shape == (360, 16) and (f >= 0).all()
    assert class_consistency(f, y).item() == pytest.approx(m["consistency"], rel=1e-6)
    # the gate's open rate is the mean mask of a pass that calls the encoder directly
    model, _ = load_pretrained(ckpt)
    images = torch.stack([x for x, _ in eval_splits({"dataset": "digits"}).transformed(False)])
    with torch.no_grad():
        rep = model.encoder.head(model.encoder.backbone(images))
    assert m["gate_open"] == pytest.approx(float(rep.mask.mean()), abs=1e-7)
    assert torch.allclose(f, rep.output, atol=1e-6)
    assert m["knn_k"] == 10 and m["linear_protocol"] == "fast"
    assert {"select2_top1", "select4_top1", "select8_top1", "retrieval_top2dims_p1"} <= set(m)
    for png in ("top_activated.png", "correlation.png", "gate_vs_frequency.png"):
        assert (out / png).stat().st_size > 1000
    md = (out / "metrics.md").read_text()
    assert md.startswith("### digits / bayesncl\n")
    assert f"| Cons. (%) | {m['consistency'] * 100:.4g} |" in md


def test_evaluate_never_changes_the_model(tmp_path, ckpt):
    """Extraction, probes and the cost step (a training step in train mode) leave every weight and
    BatchNorm statistic bit-identical, and the model in eval mode."""
    model, run_cfg = load_pretrained(ckpt)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    splits = eval_splits(run_cfg["data"])
    config = EvalConfig(probe_epochs=2, train_limit=100, knn_k=5, figures=False)
    m = run(model.encoder, splits, config, tmp_path, 10, model.classifier)
    assert m["step_seconds"] > 0 and m["gmacs_pair"] > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_extraction_leaves_the_model_untouched_in_both_bn_modes(ckpt):
    model, _ = load_pretrained(ckpt)
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


def test_a_diverged_checkpoint_is_refused(tmp_path, ckpt, capsys):
    """NaN weights: today's metrics would read H_s = 0 (perfect); evaluate must refuse."""
    saved = torch.load(ckpt, weights_only=True)
    for v in saved["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    bad = tmp_path / "nan.ckpt"
    torch.save(saved, bad)
    with pytest.raises(
        ValueError, match=rf"checkpoint {bad}: the model's features contain \d+ NaN"
    ):
        evaluate_checkpoint(str(bad), str(tmp_path / "out"), probe=False, figures=False, cost=False)
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert main(["evaluate", str(bad), "--out_dir", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "NaN/Inf values: the run diverged" in err and str(bad) in err


@pytest.mark.parametrize(
    "option,value",
    [("--knn_k", "0"), ("--probe_epochs", "0"), ("--train_limit", "0"), ("--train_limit", "-3"),
     ("--batch_size", "0"), ("--select_dims", "[0]")],
)  # fmt: skip
def test_meaningless_options_stop_before_any_work(tmp_path, option, value, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded before the options were checked")

    monkeypatch.setattr(run_module, "load_pretrained", no_work)
    assert main(["evaluate", str(tmp_path / "x.ckpt"), option, value]) == 2
    err = capsys.readouterr().err
    assert f"error: {option}=" in err and " is invalid: " in err


def test_select_dims_above_k_stops_before_extraction(tmp_path, ckpt, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("features were extracted before the options were checked")

    monkeypatch.setattr(run_module, "extract", no_work)
    assert (
        main(["evaluate", str(ckpt), "--out_dir", str(tmp_path), "--select_dims", "[4, 17]"]) == 2
    )
    assert (
        "--select_dims=[4, 17] is invalid: every width must be in 1..16" in capsys.readouterr().err
    )


def test_an_unwritable_output_dir_is_named(tmp_path, ckpt, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=rf"cannot write to {blocker / 'eval'} .*--out_dir"):
        evaluate_checkpoint(str(ckpt), str(blocker / "eval"))
    npz = blocker / "f.npz"
    assert (
        main(["evaluate", str(ckpt), "--out_dir", str(tmp_path / "o"), "--save_features", str(npz)])
        == 2
    )
    assert f"cannot write to {blocker}" in capsys.readouterr().err


def test_unknown_options_are_named(ckpt):
    with pytest.raises(ValueError, match=r"unknown evaluate options \['knn'\]; valid: data_dir"):
        evaluate_checkpoint(str(ckpt), knn=5)


def test_a_checkpoint_of_the_old_format_loads_with_the_same_weights(tmp_path, ckpt):
    """Format 1 (commit 85e91a1): ``method`` a preset name plus flat ``method_overrides``, in the
    hyper-parameters and in the stored run config."""
    new_model, _ = load_pretrained(ckpt)
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    data["hyper_parameters"]["method"] = "bayesncl"
    data["hyper_parameters"]["method_overrides"] = {"prior": 0.8, "gate_temperature": 1.0}
    data["hyper_parameters"].pop("image_size", None)
    data["bayesncl"]["config"]["model"]["method"] = "bayesncl"
    data["bayesncl"]["config"]["model"]["method_overrides"] = {"prior": 0.8}
    data["bayesncl"]["format"] = 1
    old = tmp_path / "old.ckpt"
    torch.save(data, old)
    model, run_cfg = load_pretrained(old)
    assert model.method == new_model.method and run_cfg["model"]["method"]["name"] == "bayesncl"
    for (k, a), (_, b) in zip(model.state_dict().items(), new_model.state_dict().items()):
        assert torch.equal(a, b), k
