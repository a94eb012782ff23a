import pytest

from bayesncl.cli import main

TINY_FIT = [
    "--data.dataset", "digits", "--data.batch_size", "64", "--data.num_workers", "0",
    "--model.backbone", "convnet", "--model.backbone_width", "8",
    "--model.proj_hidden_dim", "32", "--model.proj_output_dim", "16",
    "--model.optim.warmup_epochs", "0", "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """One-epoch digits checkpoints of cl, ncl and bayesncl: {method: checkpoint path}."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("cl", "ncl", "bayesncl"):
        run = root / method
        assert main(["fit", *TINY_FIT, "--model.method", method, "--run_dir", str(run)]) == 0
        out[method] = run / "checkpoints" / "last.ckpt"
    return out
