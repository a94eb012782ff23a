"""``bayesncl fit`` / ``evaluate`` of two towers (issue 14 item 5): M1 and M2 on tiny
Fashion-MNIST files in the real IDX format, a user's image-caption CSV, start-up errors, the
tokenizer stored in the checkpoint, resume, and a real 2-process DDP run equal to one process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from bayesncl.cli import main
from bayesncl.data.paired import PairedSource, captions_of, get_paired_spec
from bayesncl.models.text import Tokenizer

from ..fakedata import write_fashion_mnist, write_pairs

SMALL = [
    "--data.batch_size", "16", "--data.num_workers", "0", "--model.backbone_width", "8",
    "--model.proj_hidden_dim", "32", "--model.proj_output_dim", "16",
    "--model.optim.warmup_epochs", "0", "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1",
]  # fmt: skip
QUICK_EVAL = ["--probe_epochs", "2"]


@pytest.fixture
def fmnist(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr("bayesncl.data.datasets.FASHION_MNIST_SYSTEM_DIR", tmp_path / "none")
    return write_fashion_mnist(tmp_path / "data", n_train=64, n_test=32)


def test_m1_fits_resumes_and_evaluates(fmnist, tmp_path, capsys):
    run = tmp_path / "m1"
    args = ["fit", "--config", "fashion-mnist-edges/mmncl", *SMALL, "--data.data_dir",
            str(fmnist), "--run_dir", str(run), "--trainer.max_steps", "3"]  # fmt: skip
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["task"] == "multimodal" and saved["model"]["method"]["name"] == "ncl"
    assert saved["data"]["dataset"] == "fmnist-edges"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["bayesncl"]["task"] == "multimodal" and ckpt["global_step"] == 3
    # the same command again: the finished run is continued (nothing left to do), not restarted
    assert main(args) == 0
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    # another setting on the same folder is refused, naming it
    assert main([*args, "--model.temperature", "0.5"]) == 2
    assert "model.temperature" in capsys.readouterr().err
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), *QUICK_EVAL]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["task"] == "multimodal" and metrics["retrieval_pairs"] == 32
    for key in ("x_to_y/R@1", "y_to_x/R@10", "x_linear_top1", "y_consistency"):
        assert 0 <= metrics[key] <= 1, key
    # R@k is monotone in k, and the probes see 10 classes of labelled pairs
    assert metrics["x_to_y/R@1"] <= metrics["x_to_y/R@5"] <= metrics["x_to_y/R@10"]
    assert "zero_shot_top1" not in metrics
    assert any("image partners" in n for n in metrics["notes"])
    assert len(metrics["agreement_per_dim"]) == 16
    assert (run / "eval" / "crossmodal_dims.png").stat().st_size > 5000
    assert "| retrieval image -> partner, R@1 (%) |" in (run / "eval" / "metrics.md").read_text()


def test_m2_stores_its_tokenizer_and_scores_zero_shot_with_the_caveat(fmnist, tmp_path):
    run = tmp_path / "m2"
    args = ["fit", "--config", "fashion-mnist-captions/mmbayesncl", *SMALL, "--data.data_dir",
            str(fmnist), "--run_dir", str(run), "--trainer.max_steps", "2"]  # fmt: skip
    assert main(args) == 0
    train = get_paired_spec("fmnist-captions").load(True, PairedSource(fmnist))
    hp = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert Tokenizer.from_dict(hp["tokenizer"]) == Tokenizer.fit(captions_of(train))
    assert hp["pair_kind"] == "text" and hp["method"]["gate"] is not None
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), *QUICK_EVAL,
                 "--figures", "false"]) == 0  # fmt: skip
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["zero_shot_top1"] <= 1 and 0 <= metrics["zero_shot_plain_top1"] <= 1
    assert any("contain the class name" in n for n in metrics["notes"])
    assert 1 <= metrics["retrieval_distinct_partners"] <= 32


def test_a_users_csv_trains_with_the_readme_command(tmp_path, capsys):
    """The README's example: a CSV of image path and caption (plus labels here)."""
    data = write_pairs(tmp_path / "pairs")
    run = tmp_path / "run"
    args = ["fit", "--config", "pairs/mmncl", "--data.pairs_file", str(data / "train.csv"),
            "--data.val_pairs_file", str(data / "val.csv"), "--data.label_key", "label",
            "--data.image_size", "16", "--model.backbone", "convnet", *SMALL, "--data.batch_size",
            "4", "--trainer.max_steps", "2", "--run_dir", str(run)]  # fmt: skip
    assert main(args) == 0
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), *QUICK_EVAL]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["dataset"] == "pairs" and metrics["retrieval_pairs"] == 8
    assert "x_linear_top1" in metrics  # labelled: probes run
    assert any("data.class_names" in n for n in metrics["notes"])  # no names: no zero-shot
    # with a name per label, zero-shot from generic prompts ("a {name}", "a photo of a {name}")
    named = tmp_path / "named"
    names = ["--data.class_names", '["red square", "green square", "blue square"]']
    assert main([*args[:-1], str(named), *names]) == 0
    assert main(["evaluate", str(named / "checkpoints" / "last.ckpt"), *QUICK_EVAL]) == 0
    metrics = json.loads((named / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["zero_shot_top1"] <= 1 and "class_names" not in str(metrics["notes"])
    # a name too few, or names for a dataset that has its own, stop at start-up
    assert main([*args[:-1], str(tmp_path / "bad"), "--data.class_names", '["red", "green"]']) == 2
    assert "data.class_names has 2 names, but the pairs' labels reach 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--model.method", "ce"], "trains on labels or has parameters of its own"),
        (["--data.batch_size", "1"], "data.batch_size=1 must be >= 2"),
        (["--data.dataset", "pairs"], "set data.pairs_file"),
        (["--model.temperature", "-1"], "temperature=-1.0 must be > 0"),
        (["--model.pair_method", "nce"], "trains on labels"),
    ],
)
def test_invalid_settings_stop_at_start_up_naming_the_key(fmnist, tmp_path, capsys, extra, message):
    run = tmp_path / "bad"
    args = ["fit", "--config", "fashion-mnist-edges/mmncl", *SMALL, "--data.data_dir",
            str(fmnist), "--run_dir", str(run), *extra]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_single_encoder_options_are_refused_for_two_towers(fmnist, tmp_path, capsys):
    run = tmp_path / "m1"
    args = ["fit", "--config", "fashion-mnist-edges/clip", *SMALL, "--data.data_dir",
            str(fmnist), "--run_dir", str(run), "--trainer.max_steps", "1"]  # fmt: skip
    assert main(args) == 0
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert main(["evaluate", ckpt, "--ood", "true"]) == 2
    err = capsys.readouterr().err
    assert "multimodal (two-tower) checkpoint" in err and "'ood'" in err
    # export reads single encoders: it says so, naming the command that reads two towers
    assert main(["export", ckpt, str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err
    assert "two-tower (multimodal) checkpoint" in err and "Traceback" not in err


def _epoch_loss(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "logs" / "metrics.csv").open()))
    values = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert values, "no epoch loss logged"
    return values[0]


def test_two_process_ddp_two_towers_match_one_process(fmnist, tmp_path):
    """2 gloo processes x 16 pairs give the loss of 1 process x 32 pairs: both towers' codes are
    gathered, each rank takes its rows of one shuffled order. GroupNorm backbones (torch's
    SyncBatchNorm is CUDA-only)."""
    common = [
        "-m", "bayesncl.cli", "fit", "--config", "fashion-mnist-edges/mmncl", *SMALL,
        "--data.data_dir", str(fmnist), "--trainer.max_steps", "1", "--trainer.limit_val_batches",
        "0", "--model.backbone_norm", "group",
    ]  # fmt: skip
    env_note = "FASHION_MNIST_SYSTEM_DIR is patched only in this process: the data_dir is used"
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    one = subprocess.run(
        [sys.executable, *common, "--data.batch_size", "32", "--run_dir", str(single)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [sys.executable, *common, "--data.batch_size", "16", "--trainer.devices", "2",
         "--trainer.strategy", "ddp", "--run_dir", str(ddp)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert _epoch_loss(ddp) == pytest.approx(_epoch_loss(single), rel=1e-5), env_note


class _Crash(RuntimeError):
    pass


def test_a_run_crashed_mid_epoch_resumes_to_the_same_weights(fmnist, tmp_path):
    """Reliability: two towers that crash in step 6 and are rerun with the same command (they
    resume from step 5: mid-epoch, 4 steps per epoch) end with the weights of a run that never
    stopped: the data position and the per-step randomness (the gate's noise) come back with
    the checkpoint."""
    from lightning.pytorch.callbacks import Callback

    from bayesncl.train.fit import fit

    class CrashAt(Callback):
        def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
            # checkpoint callbacks run after the others: step 6's is never written
            if trainer.global_step == 6:
                raise _Crash("crash at step 6")

    common = ["--config", "fashion-mnist-captions/mmbayesncl", *SMALL, "--data.data_dir",
              str(fmnist), "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0",
              "--trainer.checkpoint_every_n_steps", "1"]  # fmt: skip
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    assert main(["fit", *common, "--run_dir", str(straight)]) == 0
    with pytest.raises(_Crash):
        fit([*common, "--run_dir", str(crashed)], callbacks=[CrashAt()])
    ckpt = crashed / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 5
    assert main(["fit", *common, "--run_dir", str(crashed)]) == 0  # the same command again
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.load(ckpt, weights_only=True)["global_step"] == 8 and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_diverging_two_tower_run_stops_and_keeps_no_nan_checkpoint(fmnist, tmp_path, capsys):
    """The shared non-finite guard (bayesncl.train.finite) stops two towers too, naming the
    cause, and whatever checkpoint was written is finite (the periodic check is set beyond the
    run, so the guard before the checkpoint is what stops it)."""
    run = tmp_path / "nan"
    args = ["fit", "--config", "fashion-mnist-edges/mmncl", *SMALL, "--data.data_dir", str(fmnist),
            "--run_dir", str(run), "--model.optim.name", "sgd", "--model.optim.lr", "1e12",
            "--model.finite_check_every", "1000", "--trainer.max_steps", "4"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "non-finite" in err and "optim.lr=1000000000000.0" in err
    ckpt = run / "checkpoints" / "last.ckpt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
