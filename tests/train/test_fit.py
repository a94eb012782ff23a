"""``bayesncl fit``: start-up validation, resume after a kill, and a real 2-process DDP run."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bayesncl.cli import main

from ..conftest import TINY_FIT

TINY = [*TINY_FIT, "--trainer.log_every_n_steps", "1"]


@pytest.mark.parametrize(
    "args,key",
    [
        (["--model.foo", "3"], "model.foo"),
        (["--model.optim.lr", "abc"], "model.optim.lr"),
        (["--model.method", "simclr"], "method='simclr'"),
        (["--model.method", "bayesncl", "--model.method.gate.prior", "1.5"], "prior (rho)=1.5"),
        (["--model.method", "bayesncl", "--model.method.gate.temperature", "0"], "temperature=0.0"),
        (["--model.method", "bayesncl", "--model.method.gate.kl_weight", "-1"], "(lambda)=-1.0"),
        (["--model.method", "ncl-topk", "--model.method.topk_k", "999"], "topk_k=999"),
        (["--model.method.tau", "0"], "method.tau=0"),
        (["--model.method.objective", "infonce"], "objective='infonce' is not known"),
        (["--model.method.nonneg", "tanh"], "nonneg='tanh'"),
        (["--model.method.objective_args", '{"mu": 2}'], "['mu'] are not settings"),
        (["--data.batch_size", "0"], "data.batch_size=0"),
        (["--data.dataset", "mnist"], "dataset='mnist'"),
        (["--trainer.precision", "8-bit"], "trainer.precision='8-bit'"),
        (["--trainer.profiler", "fast"], "trainer.profiler='fast'"),
        (["--model.optim.lr", "-0.1"], "optim.lr=-0.1"),
        (
            [
                "--trainer.sync_batchnorm",
                "true",
                "--trainer.devices",
                "2",
                "--trainer.strategy",
                "ddp",
            ],
            "sync_batchnorm",
        ),
    ],
)
def test_bad_config_fails_before_training_naming_the_key(tmp_path, capsys, args, key):
    run_dir = tmp_path / "run"
    assert main(["fit", *TINY, "--run_dir", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert key in err, err
    assert not (run_dir / "checkpoints").exists()  # nothing trained


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    method = ckpt["bayesncl"]["config"]["model"]["method"]
    assert (method["name"] if isinstance(method, dict) else method) == "bayesncl-gs"
    return ckpt["state_dict"]


def fit_cmd(run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "bayesncl.cli", "fit", *TINY, "--model.method", "bayesncl-gs",
        "--trainer.max_epochs", "3", "--trainer.checkpoint_every_n_steps", "4", "--run_dir", str(run_dir),
    ]  # fmt: skip


def test_resume_after_kill_gives_the_same_weights(tmp_path):
    """Kill a run mid-epoch (SIGKILL once a mid-epoch checkpoint exists), rerun the same command,
    and compare with an uninterrupted run: every weight must be identical."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    straight = tmp_path / "straight"
    subprocess.run(fit_cmd(straight), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        fit_cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if last.is_file():
            step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
            if step % 22 != 0 and step >= 26:  # 22 steps per epoch: mid-epoch, in the second epoch
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 22 < killed_at < 66
    subprocess.run(fit_cmd(killed), check=True, env=env, capture_output=True)  # same command again
    a, b = final_weights(straight), final_weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming from step {killed_at}"


def epoch_loss(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "logs" / "metrics.csv").open()))
    values = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert values, "no epoch loss logged"
    return values[0]


def test_two_process_ddp_fit_matches_single_process(tmp_path):
    """2 gloo processes x 16 images give the gathered loss of 1 process x 32 images. The ConvNet
    uses GroupNorm here: torch's SyncBatchNorm is CUDA-only, and per-process BatchNorm statistics
    would (correctly) differ from full-batch ones."""
    common = [
        *TINY, "--model.method", "bayesncl", "--data.augment_on", "sample", "--trainer.max_steps", "1",
        "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0", "--model.backbone_norm", "group",
    ]  # fmt: skip
    single = tmp_path / "single"
    ddp = tmp_path / "ddp"
    run = [sys.executable, "-m", "bayesncl.cli", "fit", *common]
    subprocess.run(
        [*run, "--data.batch_size", "32", "--run_dir", str(single)], check=True, capture_output=True
    )
    out = subprocess.run(
        [
            *run,
            "--data.batch_size",
            "16",
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
            "--run_dir",
            str(ddp),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert epoch_loss(ddp) == pytest.approx(epoch_loss(single), rel=1e-5)


def test_a_finetune_config_needs_init_from_and_fine_tunes_it(tmp_path, capsys):
    """ncl-extras-spec §8.2: ``--config DATASET/finetune`` without --model.init_from stops at
    start-up (exit 2, one line naming the option and the fix, nothing written); with it, the
    run starts from that checkpoint's backbone, and evaluate loads the fine-tuned model."""
    from bayesncl.evaluate.checkpoint import load_pretrained

    run = tmp_path / "ft"
    assert main(["fit", "--config", "digits/finetune", "--run_dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.finetune=true (a finetune config)" in err
    assert "pass --model.init_from RUN_DIR/checkpoints/last.ckpt" in err
    assert "--config DATASET/ce" in err and "Traceback" not in err
    assert not run.exists()  # failed before the run directory or any data
    pre = tmp_path / "pre"
    small = [*TINY, "--trainer.max_steps", "1"]
    assert main(["fit", "--config", "digits/ncl", *small, "--run_dir", str(pre)]) == 0
    ckpt = pre / "checkpoints" / "last.ckpt"
    start = torch.load(ckpt, weights_only=True)["state_dict"]
    args = ["fit", "--config", "digits/finetune", *small, "--model.init_from", str(ckpt),
            "--run_dir", str(run)]  # fmt: skip
    assert main(args) == 0
    model, cfg = load_pretrained(run / "checkpoints" / "last.ckpt")
    assert cfg["model"]["finetune"] is True and model.method.name == "ce"
    assert cfg["model"]["optim"]["name"] == "lars" and cfg["model"]["init_from"] == str(ckpt)
    keys = [k for k in start if k.startswith("encoder.backbone.") and k.endswith("weight")]
    for k in keys:  # one step from the loaded backbone (a fresh init: a difference of ~1.4x)
        assert (model.state_dict()[k] - start[k]).norm() < 0.1 * start[k].norm(), k
