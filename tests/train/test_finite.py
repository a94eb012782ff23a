"""Issue 18 item 5: a diverging run stops with a message naming the likely cause, and no
checkpoint with NaN weights is written; a NaN representation is not hidden by normalisation."""

import pytest
import torch

from bayesncl.cli import main
from bayesncl.core.pipeline import normalize_rows

from ..conftest import TINY_FIT


def test_normalize_rows_keeps_non_finite_rows_non_finite():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [float("nan"), 1.0], [float("inf"), 0.0]])
    out = normalize_rows(x)
    torch.testing.assert_close(out[:2], torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert (~torch.isfinite(out[2:])).any(dim=1).all()  # old code: two zero rows


@pytest.mark.parametrize("method", ["ncl", "bayesncl"])
def test_diverging_run_stops_and_keeps_no_nan_checkpoint(method, tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "fit", *TINY_FIT, "--model.method", method, "--run_dir", str(run),
        "--model.optim.name", "sgd", "--model.optim.lr", "1e6", "--model.optim.warmup_epochs", "0",
        "--model.finite_check_every", "50",
    ]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "non-finite" in err and "lower the learning rate (optim.lr=1000000.0)" in err
    ckpt = run / "checkpoints" / "last.ckpt"
    if ckpt.exists():  # whatever was written is finite
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_contrastive_objective_needs_two_views(tmp_path, capsys):
    args = ["fit", *TINY_FIT, "--data.num_views", "1", "--run_dir", str(tmp_path / "r")]
    assert main(args) == 2
    assert "objective 'nt_xent' needs >= 2 views" in capsys.readouterr().err
